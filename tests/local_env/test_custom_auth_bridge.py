"""Custom-auth bridge (scalekit_local/bridge.py): an MCP server that keeps its own login. The
authorize request goes to the app's login URL with login_request_id and state; the app posts the
user (HTTP with an M2M bearer token, or gRPC through the Python SDK's
auth.update_login_user_details); the browser returns through partner:callback and the MCP client
gets its code."""
from __future__ import annotations

import time

import httpx
import jwt
import pytest

from .helpers import ALICE, env_client
from .mcp_support import (BRIDGE_CONN, BRIDGE_SHORT_CONN, RES_BRIDGE, RES_BRIDGE_SHORT, mcp_seed, pkce, query,
                          register_client)

CALLBACK = "http://127.0.0.1:9876/callback"


@pytest.fixture(scope="module")
def seed(tmp_path_factory):
    return mcp_seed(tmp_path_factory)


@pytest.fixture(scope="module")
def env(local_scalekit_factory, seed):
    return local_scalekit_factory(seed=seed.path, auto_login=ALICE)


@pytest.fixture(scope="module")
def pages_env(local_scalekit_factory, seed):
    return local_scalekit_factory(seed=seed.path)


@pytest.fixture
def http(env):
    with env_client(env, follow_redirects=False) as client:
        yield client


def m2m_token(http, env) -> str:
    response = http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": env.client_id,
                                               "client_secret": env.client_secret})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def start(http, env, res_id: str, resource: str | None = None) -> tuple[str, str, dict]:
    """DCR + authorize; returns (client_id, code_verifier, the login URL's parameters)."""
    cid = register_client(http, env.url, res_id, [CALLBACK])["client_id"]
    verifier, challenge = pkce()
    params = {"response_type": "code", "client_id": cid, "redirect_uri": CALLBACK, "state": "client-state",
              "code_challenge": challenge, "code_challenge_method": "S256", "scope": "todo:read offline_access"}
    if resource:
        params["resource"] = resource
    response = http.get("/oauth/authorize", params=params)
    assert response.status_code == 302, response.text
    return cid, verifier, {"location": response.headers["location"], **query(response.headers["location"])}


def post_user(http, conn: str, lrid: str, token: str | None, user: dict) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http.post(f"/api/v1/connections/{conn}/auth-requests/{lrid}/user", json=user, headers=headers)


def test_http_bridge_end_to_end(http, env, seed):
    cid, verifier, login = start(http, env, RES_BRIDGE, seed.bridge_url)
    assert login["location"].startswith(seed.bridge_login_url + "?")
    assert login["login_request_id"] and login["state"] and login["state"] != "client-state"

    user = {"sub": "app-user-42", "email": "dana@bridge.test", "given_name": "Dana"}
    assert post_user(http, BRIDGE_CONN, login["login_request_id"], None, user).status_code == 401
    assert post_user(http, BRIDGE_CONN, login["login_request_id"], "not-a-token", user).status_code == 401
    token = m2m_token(http, env)
    assert post_user(http, BRIDGE_CONN, "lri_unknown", token, user).status_code == 404
    assert post_user(http, "conn_70000000000009999", login["login_request_id"], token, user).status_code == 404
    assert post_user(http, BRIDGE_CONN, login["login_request_id"], token, {"sub": "x"}).status_code == 400
    ok = post_user(http, BRIDGE_CONN, login["login_request_id"], token, user)
    assert ok.status_code == 200, ok.text

    callback = f"/sso/v1/connections/{BRIDGE_CONN}/partner:callback"
    response = http.get(callback, params={"state": login["state"]})
    assert response.status_code == 302 and response.headers["location"].startswith(CALLBACK)
    got = query(response.headers["location"])
    assert got["state"] == "client-state" and got["iss"] == f"{env.url}/resources/{RES_BRIDGE}"

    replay = http.get(callback, params={"state": login["state"]})
    assert replay.status_code == 400 and "invalid_state" in replay.text
    replay_json = http.get(callback, params={"state": login["state"]}, headers={"Accept": "application/json"})
    assert replay_json.status_code == 400 and replay_json.json()["error"] == "invalid_state"

    tokens = http.post("/oauth/token", data={"grant_type": "authorization_code", "client_id": cid, "code": got["code"],
                                             "redirect_uri": CALLBACK, "code_verifier": verifier,
                                             "resource": seed.bridge_url})
    assert tokens.status_code == 200, tokens.text
    access = tokens.json()["access_token"]
    claims = jwt.decode(access, options={"verify_signature": False})
    assert claims["aud"] == [RES_BRIDGE, seed.bridge_url] and claims["sub"].startswith("usr_")
    # MCP tokens carry no email; the user the bridge posted is the token's subject at /userinfo.
    info = http.get("/userinfo", headers={"authorization": f"Bearer {access}"}).json()
    assert info["email"] == "dana@bridge.test" and info["sub"] == claims["sub"]
    assert post_user(http, BRIDGE_CONN, login["login_request_id"], token, user).status_code == 404  # finished


def test_callback_before_user_details_is_invalid_state(http, env):
    _, _, login = start(http, env, RES_BRIDGE)
    callback = f"/sso/v1/connections/{BRIDGE_CONN}/partner:callback"
    early = http.get(callback, params={"state": login["state"]})
    assert early.status_code == 400 and "invalid_state" in early.text and "not posted" in early.text
    assert http.get(callback, params={"state": "forged"}).status_code == 400
    assert http.get(callback).status_code == 400
    # Posting afterwards still completes the login.
    assert post_user(http, BRIDGE_CONN, login["login_request_id"], m2m_token(http, env),
                     {"sub": "u1", "email": "erin@bridge.test"}).status_code == 200
    assert http.get(callback, params={"state": login["state"]}).status_code == 302


def test_expired_state_is_invalid_state(http, env):
    _, _, login = start(http, env, RES_BRIDGE_SHORT)
    token = m2m_token(http, env)
    assert post_user(http, BRIDGE_SHORT_CONN, login["login_request_id"], token,
                     {"sub": "u2", "email": "finn@bridge.test"}).status_code == 200
    time.sleep(1.3)  # this resource's state_ttl is 1 s
    response = http.get(f"/sso/v1/connections/{BRIDGE_SHORT_CONN}/partner:callback", params={"state": login["state"]})
    assert response.status_code == 400 and "invalid_state" in response.text and "expired" in response.text
    assert post_user(http, BRIDGE_SHORT_CONN, login["login_request_id"], token,
                     {"sub": "u2", "email": "finn@bridge.test"}).status_code == 404


def test_only_the_environment_client_may_post_users(http, env, seed):
    """An organization's M2M client token is refused: only the environment client's token counts."""
    _, _, login = start(http, env, RES_BRIDGE)
    org_token = http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": "m2morg_70000000000000002",
                                                 "client_secret": "test_m2m_Vh3Lr8Qz5Tc1Wn6Kx9Bd2Mf4Jp7Sg0Ya"}).json()["access_token"]
    assert post_user(http, BRIDGE_CONN, login["login_request_id"], org_token,
                     {"email": "x@bridge.test"}).status_code == 401


def test_grpc_update_login_user_details_with_the_python_sdk(http, env, monkeypatch):
    from scalekit import ScalekitClient
    from scalekit.common.exceptions import ScalekitNotFoundException

    for key, value in env.env_vars().items():
        if key not in ("SCALEKIT_ENVIRONMENT_URL", "SCALEKIT_CLIENT_ID", "SCALEKIT_CLIENT_SECRET"):
            monkeypatch.setenv(key, value)
    client = ScalekitClient(env.url, env.client_id, env.client_secret)
    _, _, login = start(http, env, RES_BRIDGE)
    response, _ = client.auth.update_login_user_details(
        BRIDGE_CONN, login["login_request_id"], {"sub": "grpc-user-7", "email": "gina@bridge.test", "given_name": "Gina"})
    assert response.auth_request_id == login["login_request_id"]
    done = http.get(f"/sso/v1/connections/{BRIDGE_CONN}/partner:callback", params={"state": login["state"]})
    assert done.status_code == 302 and "code" in query(done.headers["location"])
    with pytest.raises(ScalekitNotFoundException):
        client.auth.update_login_user_details(BRIDGE_CONN, "lri_unknown", {"sub": "x", "email": "x@bridge.test"})


def test_bridge_shows_consent_without_auto_login(pages_env):
    with env_client(pages_env, follow_redirects=False) as http:
        _, _, login = start(http, pages_env, RES_BRIDGE)
        assert post_user(http, BRIDGE_CONN, login["login_request_id"], m2m_token(http, pages_env),
                         {"sub": "u3", "email": "hank@bridge.test"}).status_code == 200
        response = http.get(f"/sso/v1/connections/{BRIDGE_CONN}/partner:callback", params={"state": login["state"]})
        assert response.status_code == 302 and response.headers["location"].startswith("/oauth/mcp/consent?")
        page = http.get(response.headers["location"])
        assert page.status_code == 200 and "hank@bridge.test" in page.text and "todo:read" in page.text
