// Minimal HTML pages; every value from a user or a token goes through escape().
export function escape(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

export function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title></head>
<body><nav><a href="/">Home</a> · <a href="/dashboard">Dashboard</a> ·
<form action="/auth/logout" method="post" style="display:inline"><button>Log out</button></form></nav>
<h1>${escape(title)}</h1>${body}</body></html>`;
}
