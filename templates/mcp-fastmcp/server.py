"""A todo MCP server protected by Scalekit (FastMCP). Run: .venv/bin/python server.py"""
from __future__ import annotations

import os
from pathlib import Path

import httpx
import uvicorn
from dotenv import load_dotenv
from fastmcp import FastMCP
from fastmcp.server.dependencies import get_access_token
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse

# .env in this folder, if any. Its values win over exported ones (override=True): many machines export
# SSL_CERT_FILE or REQUESTS_CA_BUNDLE, which would hide the local Scalekit environment's CA.
load_dotenv(Path(__file__).with_name(".env"), override=True)
from scalekit_auth import MCP_PATH, AuditLog, ToolScopes, auth, root_metadata_route  # noqa: E402

mcp = FastMCP("Todo MCP server", auth=auth, middleware=[AuditLog()])
TODOS: dict[str, list[str]] = {}  # per user (the token's sub); a real server keeps them in a database


def caller() -> dict:
    """The validated access token's claims (FastMCP checked them before any tool runs)."""
    token = get_access_token()
    return (token.claims or {}) if token else {}


@mcp.tool
def whoami() -> dict:
    """Who is calling: the subject, client and scopes of the access token."""
    claims = caller()
    return {"sub": claims.get("sub"), "client_id": claims.get("client_id"), "scope": claims.get("scope")}


@mcp.tool
async def add_todo(title: str) -> dict:
    """Add a todo for the caller (needs the todo:write scope)."""
    owner = caller().get("sub")
    TODOS.setdefault(owner, []).append(title)
    await send_to_todo_api({"owner": owner, "title": title})
    return {"owner": owner, "todos": TODOS[owner]}


# region downstream
async def send_to_todo_api(todo: dict) -> None:
    """Tell the downstream todo API, with that API's own credential. The MCP access token is never
    forwarded: it was issued for this server only (audience), and passing it on is forbidden."""
    url = os.environ.get("TODO_API_URL")
    if not url:
        return
    key = os.environ.get("TODO_API_KEY")
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(url, json=todo, headers={"Authorization": f"Bearer {key}"} if key else {})
        response.raise_for_status()
# endregion downstream


@mcp.custom_route("/healthz", methods=["GET"])
async def healthz(request):
    return PlainTextResponse("ok")


# region app
app = mcp.http_app(path=MCP_PATH, middleware=[Middleware(ToolScopes)])
app.router.routes.append(root_metadata_route())
# endregion app

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")), log_level="warning")
