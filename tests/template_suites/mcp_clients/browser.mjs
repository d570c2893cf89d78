// A scripted browser for the OAuth login of the real MCP clients: it follows redirects and submits the
// login and consent forms it meets (the local Scalekit environment's pages, or a custom-auth app's own
// login page) until it reaches the client's redirect URI. The pages need no JavaScript.
//
// As a library: logIn(authorizationUrl, redirectUri, login) -> the redirect URL with code, state, iss.
// As the Inspector's BROWSER: `node browser.mjs URL` logs in with MCP_TEST_LOGIN (email:password) and
// then delivers the redirect to the Inspector's own callback listener, as a browser would.

const MAX_STEPS = 15;

function attributes(tag) {
    const found = {};
    for (const m of tag.matchAll(/([a-zA-Z_:-]+)\s*=\s*("([^"]*)"|'([^']*)'|([^\s>]+))/g)) {
        found[m[1].toLowerCase()] = decode(m[3] ?? m[4] ?? m[5] ?? '');
    }
    return found;
}

function decode(text) {
    return text.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)))
        .replace(/&#x([0-9a-f]+);/gi, (_, n) => String.fromCharCode(parseInt(n, 16)))
        .replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

function forms(html) {
    return [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)].map(([, head, inner]) => {
        const form = attributes(head);
        const fields = [...inner.matchAll(/<input\b[^>]*>/gi)].map(([tag]) => attributes(tag)).filter(a => a.name);
        const buttons = [...inner.matchAll(/<button\b([^>]*)>/gi)].map(([, tag]) => attributes(tag)).filter(a => a.name);
        return { action: form.action ?? '', method: (form.method ?? 'get').toLowerCase(), fields, buttons };
    });
}

function fill(form, email, password) {
    const data = new URLSearchParams();
    for (const field of form.fields) {
        const type = (field.type ?? 'text').toLowerCase();
        if (type === 'submit') continue;
        if (type === 'password') data.set(field.name, password);
        else if (type === 'email' || (type === 'text' && /email|user|login/i.test(field.name))) data.set(field.name, email);
        else data.set(field.name, field.value ?? '');
    }
    const button = form.buttons.find(b => /^(approve|allow|accept|yes)$/i.test(b.value ?? '')) ?? form.buttons[0];
    if (button) data.set(button.name, button.value ?? '');
    return data;
}

export async function logIn(authorizationUrl, redirectUri, { email, password }) {
    const jar = new Map(); // host -> Map(name -> value)
    let url = String(authorizationUrl);
    let request = { method: 'GET' };
    for (let step = 0; step < MAX_STEPS; step++) {
        if (url.startsWith(redirectUri)) return new URL(url);
        const host = new URL(url).host;
        const cookies = jar.get(host) ?? new Map();
        const headers = { ...request.headers };
        if (cookies.size) headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
        const response = await fetch(url, { ...request, headers, redirect: 'manual', signal: AbortSignal.timeout(15_000) });
        for (const line of response.headers.getSetCookie()) {
            const [pair] = line.split(';');
            const at = pair.indexOf('=');
            cookies.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
        }
        jar.set(host, cookies);
        const location = response.headers.get('location');
        if (response.status >= 300 && response.status < 400 && location) {
            url = new URL(location, url).href;
            request = { method: 'GET' };
            continue;
        }
        const html = await response.text();
        const form = forms(html).find(f => f.fields.length || f.buttons.length);
        if (response.status !== 200 || !form) {
            const text = html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300);
            throw new Error(`the login stopped at ${url.split('?')[0]}: HTTP ${response.status}: ${text}`);
        }
        const target = new URL(form.action || url, url);
        const data = fill(form, email, password);
        if (form.method === 'post') {
            url = target.href;
            request = { method: 'POST', body: data.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } };
        } else {
            target.search = data.toString();
            url = target.href;
            request = { method: 'GET' };
        }
    }
    throw new Error(`the login did not reach ${redirectUri} within ${MAX_STEPS} steps`);
}

export function loginFromEnv() {
    const [email, ...rest] = (process.env.MCP_TEST_LOGIN ?? 'alice@acme.test:alice-password').split(':');
    return { email, password: rest.join(':') };
}

// BROWSER=<this> for the Inspector: it opens the authorization URL; we log in and deliver the callback.
if (import.meta.url === `file://${process.argv[1]}`) {
    const authorizationUrl = new URL(process.argv[2]);
    const redirectUri = authorizationUrl.searchParams.get('redirect_uri');
    try {
        const landed = await logIn(authorizationUrl, redirectUri, loginFromEnv());
        const delivered = await fetch(landed, { signal: AbortSignal.timeout(15_000) });
        if (!delivered.ok) throw new Error(`the client's callback answered HTTP ${delivered.status}`);
    } catch (error) {
        console.error(`browser: ${error.message}`);
        process.exit(1);
    }
}
