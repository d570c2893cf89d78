"""The local mailbox: emails the environment would send (passwordless codes and magic links, user
invitations) are kept here instead, so a developer or a test can read them.

    GET    /_local/mailbox               the messages as a page, newest first (?to=EMAIL filters)
    GET    /_local/mailbox.json          the same as JSON: {"messages": [{id, to, subject, kind, text,
                                         code?, link?, auth_request_id?, organization_id?, sent_at}]}
    DELETE /_local/mailbox               empty it

The last MAX_MESSAGES messages are kept, in memory only.
"""
from __future__ import annotations

import collections
import html
import itertools
import threading
import time
from typing import Any

MAX_MESSAGES = 500


class Mailbox:
    def __init__(self):
        self._lock = threading.Lock()
        self._messages: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_MESSAGES)
        self._ids = itertools.count(1)

    def send(self, to: str, subject: str, kind: str, text: str, **fields: Any) -> dict[str, Any]:
        with self._lock:
            message = {"id": f"msg_{next(self._ids)}", "to": to, "subject": subject, "kind": kind, "text": text,
                       **{k: v for k, v in fields.items() if v is not None}, "sent_at": time.time()}
            self._messages.append(message)
            return dict(message)

    def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            found = [dict(m) for m in self._messages if to is None or m["to"] == to.strip().lower()]
        return found[::-1]

    def clear(self) -> int:
        with self._lock:
            count = len(self._messages)
            self._messages.clear()
            return count


def _mailbox(request) -> Mailbox:
    return request.app.state.ctx.store.mailbox


async def mailbox_json(request):
    from starlette.responses import JSONResponse

    return JSONResponse({"messages": _mailbox(request).messages(request.query_params.get("to"))},
                        headers={"Cache-Control": "no-store"})


async def mailbox_page(request):
    from starlette.responses import HTMLResponse

    rows = []
    for m in _mailbox(request).messages(request.query_params.get("to")):
        sent = time.strftime("%H:%M:%S", time.localtime(m["sent_at"]))
        extra = ""
        if m.get("code"):
            extra += f"<p>Code: <code class=\"code\">{html.escape(m['code'])}</code></p>"
        if m.get("link"):
            extra += f"<p>Link: <a class=\"link\" href=\"{html.escape(m['link'])}\">{html.escape(m['link'])}</a></p>"
        rows.append(f"<article id=\"{html.escape(m['id'])}\"><h2>{html.escape(m['subject'])}</h2>"
                    f"<p>To <b>{html.escape(m['to'])}</b> at {sent} ({html.escape(m['kind'])})</p>"
                    f"<pre>{html.escape(m['text'])}</pre>{extra}</article>")
    body = "".join(rows) or "<p>No messages yet.</p>"
    doc = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Local mailbox</title>"
           "<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}"
           "article{border-bottom:1px solid #ddd;padding:.5rem 0}pre{white-space:pre-wrap}</style></head>"
           f"<body><h1>Local mailbox</h1><p>Emails the local Scalekit environment would have sent.</p>{body}</body></html>")
    return HTMLResponse(doc, headers={"Cache-Control": "no-store"})


async def clear_mailbox(request):
    from starlette.responses import JSONResponse

    return JSONResponse({"removed": _mailbox(request).clear()})


def routes() -> list:
    from starlette.routing import Route

    return [
        Route("/_local/mailbox", mailbox_page),
        Route("/_local/mailbox.json", mailbox_json),
        Route("/_local/mailbox", clear_mailbox, methods=["DELETE"]),
    ]
