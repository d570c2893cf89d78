"""A todo MCP server protected by Scalekit: the MCP Python SDK's server, mounted in FastAPI.
Run: .venv/bin/python app.py"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import uvicorn
from dotenv import load_dotenv
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from mcp.server.mcpserver import Context, MCPServer

# .env in this folder, if any. Its values win over exported ones (override=True): many machines export
# SSL_CERT_FILE or REQUESTS_CA_BUNDLE, which would hide the local Scalekit environment's CA.
load_dotenv(Path(__file__).with_name(".env"), override=True)
from scalekit_auth import (APP_URL, MCP_PATH, ScalekitAuth, audit,  # noqa: E402
                           protected_resource_metadata)


# region server
class TodoServer(MCPServer):
    """The SDK's MCPServer, plus one audit line per tool call."""

    async def call_tool(self, name, arguments, context=None):
        claims = caller(context)
        try:
            result = await super().call_tool(name, arguments, context)
        except Exception:  # unknown tool, bad arguments, or the tool failed
            audit(claims, name, "error")
            raise
        audit(claims, name, "error" if getattr(result, "is_error", False) else "ok")
        return result


def caller(ctx: Context | None) -> dict:
    """The claims ScalekitAuth validated for the HTTP request that carried this MCP message."""
    try:
        user = ctx.request_context.request.scope.get("user")
    except (AttributeError, ValueError):  # no request context (a direct call), or not over HTTP
        return {}
    return user.access_token.claims if user is not None else {}
# endregion server


mcp = TodoServer("Todo MCP server")
TODOS: dict[str, list[str]] = {}  # per user (the token's sub); a real server keeps them in a database


@mcp.tool()
def whoami(ctx: Context) -> dict:
    """Who is calling: the subject, client and scopes of the access token."""
    claims = caller(ctx)
    return {"sub": claims.get("sub"), "client_id": claims.get("client_id"), "scope": claims.get("scope")}


@mcp.tool()
async def add_todo(title: str, ctx: Context) -> dict:
    """Add a todo for the caller (needs the todo:write scope)."""
    owner = caller(ctx).get("sub")
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


# region app
# DNS-rebinding protection for a localhost APP_URL; a public one is checked by your proxy's Host rules.
mcp_app = mcp.streamable_http_app(streamable_http_path=MCP_PATH, host=urlsplit(APP_URL).hostname)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    async with mcp.session_manager.run():  # a mounted app's own lifespan does not run; start its sessions here
        yield


app = FastAPI(lifespan=lifespan)


@app.get("/.well-known/oauth-protected-resource")
@app.get(f"/.well-known/oauth-protected-resource{MCP_PATH}")
def resource_metadata() -> JSONResponse:
    return JSONResponse(protected_resource_metadata(), headers={"Access-Control-Allow-Origin": "*"})


@app.get("/healthz")
def healthz() -> PlainTextResponse:
    return PlainTextResponse("ok")


app.mount("/", ScalekitAuth(mcp_app))  # the MCP endpoint, behind Scalekit auth
# endregion app

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")), log_level="warning")
