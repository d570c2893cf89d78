"""The local environment shows apps what the hosted Scalekit service shows them (issue #9).

Each test states one documented fact, names its source (a path in Scalekit's developer docs,
the repository `scalekit-inc/developer-docs`, or the pinned SDKs' source) and checks the local
environment against it from the outside, as an app or a client would. Where the docs are silent,
the environment emits the documented minimum, so code that leans on more fails here first.
"""
from __future__ import annotations

import time

import httpx
import jwt
import pytest
import yaml

from .helpers import (ACME_ORG, ALICE, POST_LOGOUT, authorize_params, env_client, exchange, headless_code,
                      pkce_pair, query_of, sdk_client)

RESOURCE = "res_70000000000004001"          # the default seed's MCP server
RESOURCE_URL = "http://localhost:8000/mcp"
CALLBACK = "http://127.0.0.1:9876/callback"


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


@pytest.fixture
def auto(autologin):
    with env_client(autologin, follow_redirects=False) as client:
        yield client


def user_login(client: httpx.Client, env) -> dict:
    """Tokens of a headless login on an --auto-login instance (the client keeps the session cookie)."""
    response = exchange(client, env, headless_code(client, env.client_id))
    assert response.status_code == 200, response.text
    return response.json()


def mcp_login(client: httpx.Client, scope: str = "todo:read offline_access") -> dict:
    """Dynamic client registration, PKCE login with `resource`, code exchange: the token response."""
    registered = client.post(f"/resources/{RESOURCE}/register",
                             json={"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"})
    assert registered.status_code == 201, registered.text
    client_id = registered.json()["client_id"]
    verifier, challenge = pkce_pair()
    resp = client.get("/oauth/authorize", params={
        "response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK, "scope": scope, "state": "st",
        "code_challenge": challenge, "code_challenge_method": "S256", "resource": RESOURCE_URL})
    assert resp.status_code == 302, resp.text
    code = query_of(resp.headers["location"])["code"]
    token = client.post("/oauth/token", data={"grant_type": "authorization_code", "code": code, "client_id": client_id,
                                              "redirect_uri": CALLBACK, "code_verifier": verifier,
                                              "resource": RESOURCE_URL})
    assert token.status_code == 200, token.text
    return token.json()


# ---- token claims ------------------------------------------------------------------------------------
def test_user_access_token_carries_exactly_the_documented_claims(auto, autologin):
    """authenticate/fsa/complete-login.mdx, "Access token claims reference": iss, aud, sub, oid, exp,
    iat, nbf, jti, sid, client_id, roles, permissions, scope (a space-separated string). No email,
    name or `scopes` array: the email is in the ID token ("ID token claims reference") and at
    /userinfo."""
    tokens = user_login(auto, autologin)
    access = claims_of(tokens["access_token"])
    assert set(access) == {"iss", "aud", "sub", "oid", "exp", "iat", "nbf", "jti", "sid", "client_id", "roles",
                           "permissions", "scope"}
    assert isinstance(access["scope"], str) and "offline_access" in access["scope"].split()
    assert access["aud"] == [autologin.client_id] and access["client_id"] == autologin.client_id
    assert claims_of(tokens["id_token"])["email"] == ALICE
    info = auto.get("/userinfo", headers={"authorization": f"Bearer {tokens['access_token']}"})
    assert info.json()["email"] == ALICE


def test_mcp_access_token_carries_scope_string_only(auto):
    """authenticate/mcp/auth-patterns.mdx ("Verify required scopes are present in the token's `scope`
    claim") and topologies/mcp-api.mdx: MCP access tokens carry `scope`, a space-separated string. No
    `scopes` array and no profile claims (email, name): the docs list none for MCP tokens."""
    access = claims_of(mcp_login(auto)["access_token"])
    assert access["scope"] == "todo:read offline_access"
    assert not {"scopes", "email", "name"} & set(access), sorted(access)
    assert access["aud"] == [RESOURCE, RESOURCE_URL]


def test_m2m_access_token_carries_the_scopes_array_only(http):
    """authenticate/m2m/api-auth-quickstart.mdx ("Example decoded access token") and
    cookbooks/m2m-jwks-and-oauth-scopes.mdx: M2M tokens carry a `scopes` array (the claim the SDKs'
    required_scopes / requiredScopes read). The token *response* has a `scope` string; the JWT does not."""
    resp = http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": "m2morg_70000000000000002",
                                           "client_secret": "test_m2m_Vh3Lr8Qz5Tc1Wn6Kx9Bd2Mf4Jp7Sg0Ya"})
    assert resp.json()["scope"] == "orders:read orders:write"
    access = claims_of(resp.json()["access_token"])
    assert access["scopes"] == ["orders:read", "orders:write"] and "scope" not in access


# ---- logout ----------------------------------------------------------------------------------------------
def test_a_server_side_call_to_the_logout_url_leaves_the_session_alive(auto, autologin):
    """authenticate/fsa/logout.mdx, "Why must logout be a browser redirect?": API requests "don't
    include this cookie, so Scalekit can't identify which session to terminate". Only the browser's
    redirect, which carries Scalekit's session cookie, ends it."""
    tokens = user_login(auto, autologin)
    bearer = {"authorization": f"Bearer {tokens['access_token']}"}
    params = {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": POST_LOGOUT}
    with env_client(autologin, follow_redirects=False) as server_side:  # an app backend: no Scalekit cookie
        resp = server_side.get("/oidc/logout", params=params)
    assert resp.status_code == 302 and resp.headers["location"] == POST_LOGOUT
    assert auto.get("/userinfo", headers=bearer).status_code == 200, "the session ended without the browser's cookie"

    resp = auto.get("/oidc/logout", params=params)  # the browser's redirect, with the session cookie
    assert resp.status_code == 302
    assert auto.get("/userinfo", headers=bearer).status_code == 401


# ---- admin portal links ---------------------------------------------------------------------------------
def test_generated_portal_links_are_single_use_and_live_one_minute(main_env, sdk_env):
    """guides/admin-portal.mdx, "Configuration and session": "Generated links expire after 1 minute if
    not loaded" and "Each generated link can only be used once to initialize a session"."""
    link = sdk_client(main_env).organization.generate_portal_link(ACME_ORG)
    lifetime = link.expire_time.ToSeconds() - time.time()
    assert 50 <= lifetime <= 61, lifetime
    with env_client(main_env) as browser:
        assert browser.get(link.location).status_code == 200
        assert browser.get(link.location).status_code == 410


# ---- modular SSO ----------------------------------------------------------------------------------------
def test_modular_sso_id_token_sub_is_the_connection_and_the_idps_user_id(local_scalekit_factory):
    """developer-docs src/content/docs/sso/guides/user-profile-details.mdx: "The `sub` field is a
    concatenation of the `connection_id` and a unique identifier assigned to the user by the identity
    provider" (its example: "conn_17576372041941092;google-oauth2|104630259163176101050"). So with
    --modular-sso an SSO login's ID token sub is "<connection id>;<IdP's id>", the same at each login
    of that user, while a password login and an environment without the flag keep the user id."""
    modular = local_scalekit_factory(auto_login="carol@globex.test", fresh=True, extra_args=("--modular-sso",))
    plain = local_scalekit_factory(auto_login="carol@globex.test", fresh=True)
    subjects = []
    for env, extra in ((modular, {"domain_hint": "globex.test"}), (modular, {"domain_hint": "globex.test"}),
                       (modular, {}), (plain, {"domain_hint": "globex.test"})):
        with env_client(env, follow_redirects=False) as client:
            tokens = exchange(client, env, headless_code(client, env.client_id, **extra)).json()
        subjects.append((claims_of(tokens["id_token"]), claims_of(tokens["access_token"])))
    (first, first_access), (again, _), (password, _), (full_stack, _) = subjects
    connection, _, idp_user_id = first["sub"].partition(";")
    assert connection == "conn_70000000000002002" == first["amr"][0] and idp_user_id, first["sub"]
    assert "@" not in idp_user_id and not idp_user_id.startswith("usr_")  # opaque, not the email or a user id
    assert again["sub"] == first["sub"]
    assert first_access["sub"].startswith("usr_")  # the docs speak of the ID token only
    assert password["sub"].startswith("usr_") and full_stack["sub"].startswith("usr_")


# ---- webhooks -----------------------------------------------------------------------------------------
def test_user_login_and_signup_events_have_the_documented_shapes(tmp_path):
    """openapi/scalekit.yaml, webhooks `user.signup` (object OrgMembership, data OrgMembershipEventData:
    {organization, user}) and `user.login` (object User, data UserAuthEventData: {user, user_session
    {session_id, user_id, organization_id, status, ...}})."""
    from scalekit_local import DEFAULT_SEED_PATH, LocalScalekit

    seed = yaml.safe_load(DEFAULT_SEED_PATH.read_text())
    path = tmp_path / "seed.yaml"
    path.write_text(yaml.safe_dump(seed))
    with LocalScalekit(port=0, seed_path=path, data_dir=tmp_path / "data") as env, \
            httpx.Client(base_url=env.url, verify=env.ca_bundle) as browser:
        resp = browser.get("/oauth/authorize", params=authorize_params(env.client_id, provider="github"))
        request_id = query_of(resp.headers["location"])["r"]
        done = browser.post("/ui/social", data={"r": request_id, "provider": "github", "action": "allow",
                                                "email": "newbie@example.test"})
        assert done.status_code == 302, done.text
        events = {e["type"]: e for e in browser.get("/_local/events").json()["events"]}
    signup, login = events["user.signup"], events["user.login"]
    assert signup["object"] == "OrgMembership"
    assert signup["data"]["organization"]["id"] == signup["organization_id"]
    assert signup["data"]["user"]["email"] == "newbie@example.test"
    assert login["object"] == "User"
    assert set(login["data"]) == {"user", "user_session"}
    session = login["data"]["user_session"]
    assert login["data"]["user"]["email"] == "newbie@example.test"
    assert session["session_id"].startswith("ses_") and session["user_id"] == login["data"]["user"]["id"]
    assert session["organization_id"] == login["organization_id"] and session["status"] == "ACTIVE"


# ---- discovery ------------------------------------------------------------------------------------------
def test_resource_paths_serve_oauth_metadata_but_not_openid_configuration(http):
    """authenticate/mcp/xmcp-quickstart.mdx: "Resource-specific paths on Scalekit serve
    /.well-known/oauth-authorization-server but return 404 for /.well-known/openid-configuration"."""
    for path in (f"/.well-known/openid-configuration/resources/{RESOURCE}",
                 f"/resources/{RESOURCE}/.well-known/openid-configuration"):
        assert http.get(path).status_code == 404, path
    for path in (f"/.well-known/oauth-authorization-server/resources/{RESOURCE}",
                 f"/resources/{RESOURCE}/.well-known/oauth-authorization-server"):
        assert http.get(path).status_code == 200, path


# ---- dynamic client registration ----------------------------------------------------------------------
@pytest.mark.parametrize("asked", ["client_secret_post", "client_secret_basic", None])
def test_registered_mcp_clients_are_public(http, asked):
    """authenticate/mcp/managing-mcp-clients.mdx: "MCP clients registered through Dynamic Client
    Registration (DCR) or a Client ID Metadata Document (CIMD) are public clients: they have no
    client secret." A request for a secret-based method is answered with a public client
    (RFC 7591 §3.2.1 lets the server replace requested metadata), as claude.ai's registrations,
    which ask for client_secret_post, need to work against hosted Scalekit."""
    meta = http.get(f"/.well-known/oauth-authorization-server/resources/{RESOURCE}").json()
    assert meta["token_endpoint_auth_methods_supported"] == ["none"]
    body = {"redirect_uris": [CALLBACK], **({"token_endpoint_auth_method": asked} if asked else {})}
    registered = http.post(f"/resources/{RESOURCE}/register", json=body)
    assert registered.status_code == 201, registered.text
    answer = registered.json()
    assert answer["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in answer and "client_secret_expires_at" not in answer

