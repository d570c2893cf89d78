"""The /_local/ admin routes for what only the local environment has: its health and request
counters, webhook endpoints, deliveries and events (cross/webhooks.py documents them), injected
faults (cross/faults.py) and the mailbox (cross/mailbox.py). Other admin routes sit with what they
serve: directory pushes in directories.py; portal links, passwords and domain verification in
portal.py; IdP-initiated login in idp_initiated.py; the token matrix in token_matrix.py.
admin_guard.py refuses cross-site requests to all of them; app.py lists every route.
"""
from __future__ import annotations

import html
import time

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from ..cross.faults import FaultError, from_json
from ..safe_input import loads_json


# ---- health and counters -------------------------------------------------------------------------
async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def stats(request: Request) -> Response:
    return JSONResponse(request.app.state.ctx.store.snapshot_stats())


# ---- webhooks and events (cross/webhooks.py) -------------------------------------------------------
def _bus(request):
    return request.app.state.ctx.events


async def _json_body(request) -> dict:
    try:
        body = loads_json(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise ValueError("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")  # noqa: TRY004 - a 400 answer
    return body


def _bad(message: str, status: int = 400):
    return JSONResponse({"error": "invalid_request", "error_description": message}, status_code=status)


async def list_endpoints(request):
    return JSONResponse({"endpoints": _bus(request).endpoint_list()})


async def add_endpoint(request):
    try:
        endpoint = _bus(request).add_endpoint(await _json_body(request))
    except ValueError as exc:
        return _bad(str(exc))
    return JSONResponse(endpoint.public(), status_code=201)


async def delete_endpoint(request):
    if not _bus(request).remove_endpoint(request.path_params["endpoint_id"]):
        return _bad("no such webhook endpoint", 404)
    return Response(status_code=204)


async def list_deliveries(request):
    q = request.query_params
    rows = _bus(request).delivery_log(event_id=q.get("event_id"), type=q.get("type"), state=q.get("state"),
                                      endpoint_id=q.get("endpoint_id"))
    return JSONResponse({"deliveries": rows})


async def list_events(request):
    return JSONResponse({"events": _bus(request).recent_events(request.query_params.get("type"))})


async def post_event(request):
    try:
        body = await _json_body(request)
    except ValueError as exc:
        return _bad(str(exc))
    if not isinstance(body.get("type"), str) or not body["type"]:
        return _bad("type is required")
    if not isinstance(body.get("data", {}), dict):
        return _bad("data must be an object")
    event = _bus(request).emit(body["type"], body.get("data") or {}, organization_id=body.get("organization_id"),
                               object=body.get("object"))
    return JSONResponse(event, status_code=201)


# ---- injected faults (cross/faults.py) -------------------------------------------------------------
async def list_faults(request):
    return JSONResponse({"faults": request.app.state.ctx.faults.list()})


async def add_fault(request):
    try:
        try:
            body = loads_json(await request.body())
        except (ValueError, UnicodeDecodeError):
            raise FaultError("the body must be a JSON object") from None
        fault = request.app.state.ctx.faults.add(**from_json(body))
    except FaultError as exc:
        return JSONResponse({"error": "invalid_request", "error_description": str(exc)}, status_code=400)
    return JSONResponse(fault.public(), status_code=201)


async def clear_faults(request):
    return JSONResponse({"removed": request.app.state.ctx.faults.clear()})


async def remove_fault(request):
    if not request.app.state.ctx.faults.remove(request.path_params["fault_id"]):
        return JSONResponse({"error": "not_found", "error_description": "no such fault"}, status_code=404)
    return Response(status_code=204)


# ---- the mailbox (cross/mailbox.py) ---------------------------------------------------------------
def _mailbox(request):
    return request.app.state.ctx.mailbox


async def mailbox_json(request):
    return JSONResponse({"messages": _mailbox(request).messages(request.query_params.get("to"))},
                        headers={"Cache-Control": "no-store"})


async def mailbox_page(request):
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
    return JSONResponse({"removed": _mailbox(request).clear()})
