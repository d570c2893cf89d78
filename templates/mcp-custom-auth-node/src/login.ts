// Custom auth: the app's own login page, bridged to Scalekit's login request.
//  1. Scalekit sends the browser to /login?login_request_id=...&state=...
//  2. The user signs in with the app's own credentials.
//  3. The app tells Scalekit who signed in (server to server), then sends the browser back to
//     Scalekit with the same state; Scalekit asks for consent and gives the MCP client its code.
import { randomBytes, timingSafeEqual } from 'node:crypto';

import { Scalekit } from '@scalekit-sdk/node';
import type { Request, Response } from 'express';
import express from 'express';

import { checkPassword } from './users.js';

// region bridge-config
function required(name: string): string {
    const value = process.env[name]?.trim();
    if (!value) {
        console.error(`error: ${name} is not set (see .env.example)`);
        process.exit(2);
    }
    return value;
}

const environmentUrl = required('SCALEKIT_ENVIRONMENT_URL').replace(/\/+$/, '');
const connectionId = required('SCALEKIT_CONNECTION_ID');
const appUrl = process.env.APP_URL ?? ''; // conn_..., from the MCP server's custom-auth settings
// The management API needs the environment's client credentials (never sent to the browser).
const scalekit = new Scalekit(environmentUrl, required('SCALEKIT_CLIENT_ID'), required('SCALEKIT_CLIENT_SECRET'));
// endregion bridge-config

// region login-page
const escape = (text: string) => text.replace(/[&<>"']/g, c => `&#${c.charCodeAt(0)};`);
const CSRF_COOKIE = 'login_csrf';

function loginPage(res: Response, status: number, form: { loginRequestId: string; state: string; csrf: string },
    error = ''): void {
    res.status(status)
        .set({ 'Content-Security-Policy': "frame-ancestors 'none'", 'Cache-Control': 'no-store' })
        .type('html').send(`<!doctype html><title>Sign in</title>
<h1>Sign in to Todo</h1>${error ? `<p role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/login">
  <input type="hidden" name="login_request_id" value="${escape(form.loginRequestId)}">
  <input type="hidden" name="state" value="${escape(form.state)}">
  <input type="hidden" name="csrf" value="${escape(form.csrf)}">
  <label>Email <input type="email" name="email" autocomplete="username" required></label>
  <label>Password <input type="password" name="password" autocomplete="current-password" required></label>
  <button type="submit">Sign in</button>
</form>`);
}

export const loginRoutes = express.Router();
loginRoutes.use(express.urlencoded({ extended: false, limit: '8kb' }));

// Scalekit sends the browser here with login_request_id and state (valid for 10 minutes).
loginRoutes.get('/login', (req: Request, res: Response) => {
    const { login_request_id: loginRequestId, state } = req.query;
    if (typeof loginRequestId !== 'string' || typeof state !== 'string' || !loginRequestId || !state) {
        res.status(400).type('text').send('Start from your MCP client: this page needs login_request_id and state.');
        return;
    }
    const csrf = randomBytes(24).toString('base64url'); // ties the form to this browser (login CSRF)
    res.cookie(CSRF_COOKIE, csrf, { httpOnly: true, sameSite: 'lax', secure: appUrl.startsWith('https://'), path: '/login' });
    loginPage(res, 200, { loginRequestId, state, csrf });
});
// endregion login-page

// region login-submit
function cookie(req: Request, name: string): string {
    for (const part of (req.headers.cookie ?? '').split(';')) {
        const [key, ...value] = part.trim().split('=');
        if (key === name) return value.join('=');
    }
    return '';
}

const same = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

loginRoutes.post('/login', async (req: Request, res: Response) => {
    const { login_request_id: loginRequestId, state, csrf, email, password } = req.body ?? {};
    if (![loginRequestId, state, csrf, email, password].every(v => typeof v === 'string' && v)) {
        res.status(400).type('text').send('The form is incomplete: start again from your MCP client.');
        return;
    }
    if (!same(csrf, cookie(req, CSRF_COOKIE))) {
        res.status(403).type('text').send('This form expired: start the login again from your MCP client.');
        return;
    }
    const user = await checkPassword(email, password);
    if (!user) return loginPage(res, 401, { loginRequestId, state, csrf }, 'Wrong email or password.');
    try {
        // Tell Scalekit who signed in, for this login request only.
        await scalekit.auth.updateLoginUserDetails(connectionId, loginRequestId, {
            sub: user.id, email: user.email, givenName: user.givenName, familyName: user.familyName
        });
    } catch (error) {
        console.error(`Scalekit refused the login request: ${(error as Error).message}`);
        res.status(400).type('text').send('This sign-in has expired or was already used: start again from your MCP client.');
        return;
    }
    // Back to Scalekit with the state unchanged; only this fixed URL, never one taken from the request.
    const callback = new URL(`${environmentUrl}/sso/v1/connections/${connectionId}/partner:callback`);
    callback.searchParams.set('state', state);
    res.redirect(303, callback.href);
});
// endregion login-submit
