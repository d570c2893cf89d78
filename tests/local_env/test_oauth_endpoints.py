"""OAuth/OIDC endpoints over raw HTTP: the good paths the SDKs don't cover, and every bad input."""
from __future__ import annotations

import re

import socket
import ssl

import jwt
import pytest

from .helpers import (ACME_ORG, ACME_SAML, GLOBEX_OIDC, M2M_ID, M2M_SECRET, POST_LOGOUT, REDIRECT, authorize_params,
                      exchange, headless_code, pkce_pair, query_of)


# ---- discovery, keys, transport -------------------------------------------------------------
def test_discovery_document(http, main_env):
    doc = http.get("/.well-known/openid-configuration").json()
    assert doc["issuer"] == main_env.url
    for key, path in [("authorization_endpoint", "/oauth/authorize"), ("token_endpoint", "/oauth/token"),
                      ("jwks_uri", "/keys"), ("end_session_endpoint", "/oidc/logout"), ("userinfo_endpoint", "/userinfo")]:
        assert doc[key] == main_env.url + path
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["token_endpoint_auth_methods_supported"] == ["client_secret_post"]


def test_keys_are_rs256_with_kid_and_stable_across_instances(http, autologin, auto_http):
    keys = http.get("/keys").json()["keys"]
    assert len(keys) == 1
    assert keys[0]["alg"] == "RS256" and keys[0]["kty"] == "RSA" and keys[0]["use"] == "sig"
    assert keys[0]["kid"].startswith("snk_")
    # Another process on the same data folder serves the same key.
    assert auto_http.get("/keys").json()["keys"] == keys


def test_double_slash_paths_reach_the_endpoints(http, main_env):
    # What an SDK builds from an env URL with a trailing slash.
    assert http.get(main_env.url + "//keys").status_code == 200
    resp = http.post(main_env.url + "//oauth/token", data={"grant_type": "client_credentials", "client_id": main_env.client_id,
                                            "client_secret": main_env.client_secret})
    assert resp.status_code == 200 and resp.json()["access_token"]


def _alpn(url: str, ca: str, offer: list[str]) -> str | None:
    host, port = url.split("//")[1].split(":")
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(offer)
    with socket.create_connection((host, int(port)), timeout=5) as raw, ctx.wrap_socket(raw, server_hostname=host) as tls:
        return tls.selected_alpn_protocol()


def test_alpn_prefers_http11_for_browsers_and_gives_h2_to_grpc(main_env):
    assert _alpn(main_env.url, main_env.ca_bundle, ["h2", "http/1.1"]) == "http/1.1"
    assert _alpn(main_env.url, main_env.ca_bundle, ["h2"]) == "h2"


def test_certificate_covers_localhost(main_env):
    import httpx

    alias = main_env.url.replace("127.0.0.1", "localhost")
    assert httpx.get(alias + "/keys", verify=main_env.ca_bundle).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(main_env.url + "/keys", verify=True)  # not trusted without the local CA


# ---- /oauth/authorize: problems shown on a page, never redirected ---------------------------------
@pytest.mark.parametrize("change, needle", [
    ({"client_id": None}, "client_id parameter is missing"),
    ({"client_id": "skc_12345678"}, "Unknown client_id"),
    ({"client_id": M2M_ID}, "Unknown client_id"),
    ({"redirect_uri": None}, "redirect_uri parameter is missing"),
    ({"redirect_uri": "https://evil.example/callback"}, "not registered"),
    ({"redirect_uri": REDIRECT + "/"}, "not registered"),
    ({"redirect_uri": "http://localhost:3001/auth/callback"}, "not registered"),
    ({"redirect_uri": REDIRECT + "?next=x"}, "not registered"),
])
def test_authorize_bad_client_or_redirect_shows_error_page(http, main_env, change, needle):
    params = authorize_params(main_env.client_id)
    params.update(change)
    resp = http.get("/oauth/authorize", params={k: v for k, v in params.items() if v is not None})
    assert resp.status_code == 400
    assert "location" not in resp.headers
    assert resp.headers["content-type"].startswith("text/html")
    assert needle in resp.text


def test_authorize_repeated_client_id_is_refused_on_a_page(http, main_env):
    query = f"response_type=code&client_id={main_env.client_id}&client_id=skc_1234567&redirect_uri={REDIRECT}"
    resp = http.get("/oauth/authorize?" + query)
    assert resp.status_code == 400 and "location" not in resp.headers


# ---- /oauth/authorize: problems redirected back with error and state ---------------------------
@pytest.mark.parametrize("change, error", [
    ({"response_type": None}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"scope": None}, "invalid_scope"),
    ({"scope": "profile email"}, "invalid_scope"),
    ({"scope": "openid admin:everything"}, "invalid_scope"),
    ({"code_challenge": "a" * 43, "code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge": "a" * 43}, "invalid_request"),
    ({"code_challenge_method": "S256"}, "invalid_request"),
    ({"code_challenge": "too-short", "code_challenge_method": "S256"}, "invalid_request"),
    ({"organization_id": "org_404404404"}, "invalid_request"),
    ({"connection_id": "conn_404404404"}, "invalid_request"),
    ({"provider": "myspace"}, "invalid_request"),
    ({"prompt": "sometimes"}, "invalid_request"),
    ({"prompt": "none login"}, "invalid_request"),
    ({"prompt": "none"}, "login_required"),
])
def test_authorize_errors_redirect_with_state(http, main_env, change, error):
    params = authorize_params(main_env.client_id)
    params.update(change)
    resp = http.get("/oauth/authorize", params={k: v for k, v in params.items() if v is not None})
    assert resp.status_code == 302
    location = resp.headers["location"]
    assert location.startswith(REDIRECT + "?")
    query = query_of(location)
    assert query["error"] == error and query["error_description"]
    assert query["state"] == params["state"]
    assert "code" not in query


@pytest.mark.parametrize("hint, target", [
    ({}, "/ui/login?"),
    ({"connection_id": ACME_SAML}, "/ui/idp?"),
    ({"organization_id": ACME_ORG}, "/ui/idp?"),
    ({"domain_hint": "globex.test"}, "/ui/idp?"),
    ({"domain": "acme.test"}, "/ui/idp?"),
    ({"login_hint": "someone@globex.test"}, "/ui/idp?"),
    ({"login_hint": "someone@elsewhere.test"}, "/ui/login?"),
    ({"provider": "github"}, "/ui/social?"),
])
def test_authorize_routes_to_the_right_page(http, main_env, hint, target):
    resp = http.get("/oauth/authorize", params=authorize_params(main_env.client_id, **hint))
    assert resp.status_code == 302
    assert resp.headers["location"].startswith(target)
    page = http.get(resp.headers["location"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    if target == "/ui/idp?":
        assert ("SAML" in page.text) or ("OIDC" in page.text)


def test_idp_page_shows_connection_type(http, main_env):
    for conn, kind in [(ACME_SAML, "SAML"), (GLOBEX_OIDC, "OIDC")]:
        resp = http.get("/oauth/authorize", params=authorize_params(main_env.client_id, connection_id=conn))
        page = http.get(resp.headers["location"])
        assert f'<dd id="connection-type">{kind}</dd>' in page.text
        assert conn in page.text


@pytest.mark.parametrize("hint, prefilled", [({"connection_id": ACME_SAML}, ""),
                                              ({"organization_id": ACME_ORG}, ""),
                                              ({"login_hint": "zed@acme.test"}, "zed@acme.test")])
def test_idp_page_prefills_the_email_only_from_login_hint(http, main_env, hint, prefilled):
    """Documented minimum: nothing but the app's login_hint tells the IdP who signs in (a seeded user
    of the domain must not appear on the page by itself)."""
    resp = http.get("/oauth/authorize", params=authorize_params(main_env.client_id, **hint))
    page = http.get(resp.headers["location"])
    field = re.search(r'<input type="email" id="email" name="email" value="([^"]*)"', page.text)
    assert field and field.group(1) == prefilled, page.text[:800]


def test_expired_or_unknown_login_request_shows_error(http):
    resp = http.get("/ui/login", params={"r": "areq_nope"})
    assert resp.status_code == 400 and "expired" in resp.text
    resp = http.post("/ui/login", data={"r": "areq_nope", "email": "a@b.test", "password": "x"})
    assert resp.status_code == 400


def test_wrong_password_stays_on_the_page(http, main_env):
    location = http.get("/oauth/authorize", params=authorize_params(main_env.client_id)).headers["location"]
    request_id = query_of(location)["r"]
    resp = http.post("/ui/login", data={"r": request_id, "email": "alice@acme.test", "password": "wrong"})
    assert resp.status_code == 401 and "Incorrect email or password" in resp.text
    resp = http.post("/ui/login", data={"r": request_id, "email": "alice@acme.test", "password": "alice-password"})
    assert resp.status_code == 302 and "code" in query_of(resp.headers["location"])


def test_idp_refuses_email_outside_its_domains_and_cancel_returns_access_denied(http, main_env):
    params = authorize_params(main_env.client_id, connection_id=ACME_SAML)
    request_id = query_of(http.get("/oauth/authorize", params=params).headers["location"])["r"]
    resp = http.post("/ui/idp", data={"r": request_id, "connection_id": ACME_SAML, "email": "eve@evil.test", "action": "approve"})
    assert resp.status_code == 400 and "only signs in users of" in resp.text
    resp = http.post("/ui/idp", data={"r": request_id, "connection_id": ACME_SAML, "action": "cancel"})
    assert resp.status_code == 302
    query = query_of(resp.headers["location"])
    assert query["error"] == "access_denied" and query["state"] == params["state"]


def test_session_cookie_skips_the_page_unless_prompt_login(http, main_env):
    request_id = query_of(http.get("/oauth/authorize", params=authorize_params(main_env.client_id)).headers["location"])["r"]
    resp = http.post("/ui/login", data={"r": request_id, "email": "bob@acme.test", "password": "bob-password"})
    assert resp.status_code == 302
    again = http.get("/oauth/authorize", params=authorize_params(main_env.client_id, prompt="none"))
    assert "code" in query_of(again.headers["location"])
    forced = http.get("/oauth/authorize", params=authorize_params(main_env.client_id, prompt="login"))
    assert forced.headers["location"].startswith("/ui/login?")


# ---- /oauth/token -------------------------------------------------------------------------------
def _token(http, **data):
    return http.post("/oauth/token", data={k: v for k, v in data.items() if v is not None})


def test_token_endpoint_request_errors(http, main_env):
    creds = {"client_id": main_env.client_id, "client_secret": main_env.client_secret}
    resp = http.post("/oauth/token", json={"grant_type": "client_credentials", **creds})
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"
    assert _token(http, **creds).json()["error"] == "invalid_request"
    resp = _token(http, grant_type="password", **creds)
    assert resp.status_code == 400 and resp.json()["error"] == "unsupported_grant_type"
    resp = _token(http, grant_type="client_credentials", client_id=main_env.client_id)
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
    resp = _token(http, grant_type="client_credentials", client_id=main_env.client_id, client_secret="nope-nope")
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
    resp = _token(http, grant_type="client_credentials", client_id="skc_999999999", client_secret="whatever1")
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
    resp = http.post("/oauth/token", content=b"grant_type=client_credentials&grant_type=refresh_token",
                     headers={"content-type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"
    assert resp.headers["cache-control"] == "no-store"


def test_m2m_client_credentials_and_scope_errors(http, main_env):
    resp = _token(http, grant_type="client_credentials", client_id=M2M_ID, client_secret=M2M_SECRET)
    body = resp.json()
    assert resp.status_code == 200 and body["scope"] == "orders:read orders:write"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["scopes"] == ["orders:read", "orders:write"] and claims["oid"] == ACME_ORG
    assert claims["aud"] == ["https://api.acme.test"] and claims["sub"] == M2M_ID
    resp = _token(http, grant_type="client_credentials", client_id=M2M_ID, client_secret=M2M_SECRET, scope="orders:delete")
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_scope"
    resp = _token(http, grant_type="authorization_code", client_id=M2M_ID, client_secret=M2M_SECRET, code="x",
                  redirect_uri=REDIRECT)
    assert resp.status_code == 400 and resp.json()["error"] == "unauthorized_client"
    resp = _token(http, grant_type="refresh_token", client_id=M2M_ID, client_secret=M2M_SECRET, refresh_token="x")
    assert resp.status_code == 400 and resp.json()["error"] == "unauthorized_client"


def test_code_exchange_errors(auto_http, autologin):
    resp = exchange(auto_http, autologin, "no-such-code")
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"
    assert exchange(auto_http, autologin, None).json()["error"] == "invalid_request"
    code = headless_code(auto_http, autologin.client_id)
    assert exchange(auto_http, autologin, code, redirect_uri=None).json()["error"] == "invalid_request"
    # A wrong redirect_uri burns the code: it is single use whatever the outcome.
    code = headless_code(auto_http, autologin.client_id)
    resp = exchange(auto_http, autologin, code, redirect_uri="http://127.0.0.1:3000/auth/callback")
    assert resp.json()["error"] == "invalid_grant"
    assert exchange(auto_http, autologin, code).json()["error"] == "invalid_grant"
    code = headless_code(auto_http, autologin.client_id)
    resp = exchange(auto_http, autologin, code, client_secret="wrong-secret")
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"


def test_code_replay_is_refused_and_revokes_what_it_issued(auto_http, autologin):
    code = headless_code(auto_http, autologin.client_id)
    first = exchange(auto_http, autologin, code)
    assert first.status_code == 200
    replay = exchange(auto_http, autologin, code)
    assert replay.status_code == 400 and replay.json() == {
        "error": "invalid_grant", "error_description": "authorization code was already used"}
    resp = _token(auto_http, grant_type="refresh_token", refresh_token=first.json()["refresh_token"],
                  client_id=autologin.client_id, client_secret=autologin.client_secret)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


def test_pkce_is_verified(auto_http, autologin):
    verifier, challenge = pkce_pair()
    other_verifier, _ = pkce_pair()
    code = headless_code(auto_http, autologin.client_id, code_challenge=challenge, code_challenge_method="S256")
    resp = exchange(auto_http, autologin, code, code_verifier=other_verifier)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"
    code = headless_code(auto_http, autologin.client_id, code_challenge=challenge, code_challenge_method="S256")
    assert exchange(auto_http, autologin, code).json()["error"] == "invalid_grant"  # verifier missing
    code = headless_code(auto_http, autologin.client_id, code_challenge=challenge, code_challenge_method="S256")
    assert exchange(auto_http, autologin, code, code_verifier="short").json()["error"] == "invalid_request"
    code = headless_code(auto_http, autologin.client_id)
    assert exchange(auto_http, autologin, code, code_verifier=verifier).json()["error"] == "invalid_grant"
    code = headless_code(auto_http, autologin.client_id, code_challenge=challenge, code_challenge_method="S256")
    assert exchange(auto_http, autologin, code, code_verifier=verifier).status_code == 200


def test_auto_login_still_validates_client_and_redirect(auto_http, autologin):
    resp = auto_http.get("/oauth/authorize", params=authorize_params(autologin.client_id, redirect_uri="https://evil.example/"))
    assert resp.status_code == 400 and "location" not in resp.headers
    resp = auto_http.get("/oauth/authorize", params=authorize_params(autologin.client_id, code_challenge_method="plain",
                                                                     code_challenge="x" * 43))
    assert query_of(resp.headers["location"])["error"] == "invalid_request"


def test_refresh_token_reuse_revokes_the_family(auto_http, autologin):
    creds = {"client_id": autologin.client_id, "client_secret": autologin.client_secret}
    first = exchange(auto_http, autologin, headless_code(auto_http, autologin.client_id)).json()["refresh_token"]
    second = _token(auto_http, grant_type="refresh_token", refresh_token=first, **creds).json()["refresh_token"]
    reuse = _token(auto_http, grant_type="refresh_token", refresh_token=first, **creds)
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    assert "revoked" in reuse.json()["error_description"]
    # The legitimate newest token dies with its family.
    resp = _token(auto_http, grant_type="refresh_token", refresh_token=second, **creds)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"
    assert _token(auto_http, grant_type="refresh_token", **creds).json()["error"] == "invalid_request"


def test_refresh_can_narrow_but_not_widen_scopes(auto_http, autologin):
    creds = {"client_id": autologin.client_id, "client_secret": autologin.client_secret}
    rt = exchange(auto_http, autologin, headless_code(auto_http, autologin.client_id)).json()["refresh_token"]
    resp = _token(auto_http, grant_type="refresh_token", refresh_token=rt, scope="openid admin", **creds)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_scope"


def test_code_expiry(tmp_path):
    """Codes live 60 s; checked in-process by ageing the stored code instead of waiting."""
    import httpx
    from scalekit_local import LocalScalekit

    with LocalScalekit(data_dir=tmp_path, auto_login="bob@acme.test") as env, \
            httpx.Client(base_url=env.url, verify=env.ca_bundle) as client:
        code = headless_code(client, env.client_id)
        env.store.codes[code].expires_at = 0
        resp = exchange(client, env, code)
        assert resp.status_code == 400 and resp.json()["error_description"] == "authorization code has expired"


# ---- /oidc/logout and /userinfo --------------------------------------------------------------------
def test_logout_validation(auto_http, autologin):
    tokens = exchange(auto_http, autologin, headless_code(auto_http, autologin.client_id)).json()
    bad = [
        {"post_logout_redirect_uri": POST_LOGOUT},  # no client known
        {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://evil.example/"},
        {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "http://localhost:3000"},
        {"id_token_hint": "not.a.jwt"},
        {"id_token_hint": jwt.encode({"iss": autologin.url, "aud": [autologin.client_id]}, "k" * 32, "HS256")},
        {"client_id": "skc_999999999", "post_logout_redirect_uri": POST_LOGOUT},
    ]
    for params in bad:
        resp = auto_http.get("/oidc/logout", params=params)
        assert resp.status_code == 400, params
        assert "location" not in resp.headers and resp.headers["content-type"].startswith("text/html")
    # Nothing above ended the session: the access token still works.
    assert auto_http.get("/userinfo", headers={"authorization": f"Bearer {tokens['access_token']}"}).status_code == 200
    resp = auto_http.get("/oidc/logout", params={"client_id": autologin.client_id, "post_logout_redirect_uri": POST_LOGOUT})
    assert resp.status_code == 302 and resp.headers["location"] == POST_LOGOUT


def test_userinfo_and_logout_end_the_session(auto_http, autologin):
    tokens = exchange(auto_http, autologin, headless_code(auto_http, autologin.client_id)).json()
    auth = {"authorization": f"Bearer {tokens['access_token']}"}
    info = auto_http.get("/userinfo", headers=auth).json()
    assert info["email"] == "alice@acme.test" and info["sub"].startswith("usr_") and info["oid"] == ACME_ORG
    assert auto_http.get("/userinfo").status_code == 401
    resp = auto_http.get("/userinfo", headers={"authorization": "Bearer garbage"})
    assert resp.status_code == 401 and 'error="invalid_token"' in resp.headers["www-authenticate"]

    resp = auto_http.get("/oidc/logout", params={"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": POST_LOGOUT,
                                                 "state": "s1"})
    assert resp.status_code == 302 and resp.headers["location"] == POST_LOGOUT + "?state=s1"
    assert auto_http.get("/userinfo", headers=auth).status_code == 401
    resp = _token(auto_http, grant_type="refresh_token", refresh_token=tokens["refresh_token"],
                  client_id=autologin.client_id, client_secret=autologin.client_secret)
    assert resp.json()["error"] == "invalid_grant"
    page = auto_http.get("/oidc/logout")
    assert page.status_code == 200 and "signed out" in page.text


# ---- garbage in, no 500 ------------------------------------------------------------------------
@pytest.mark.parametrize("method, path, kwargs", [
    ("POST", "/oauth/token", {"content": b"\xff\xfe\x00garbage", "headers": {"content-type": "application/x-www-form-urlencoded"}}),
    ("POST", "/oauth/token", {"content": b"a" * 70_000, "headers": {"content-type": "application/x-www-form-urlencoded"}}),
    ("GET", "/oauth/token", {}),
    ("GET", "/oauth/authorize?client_id=%ff%fe&redirect_uri=%00", {}),
    ("POST", "/oauth/authorize", {"content": b"\x00\x01", "headers": {"content-type": "application/octet-stream"}}),
    ("POST", "/ui/login", {"content": b"r=%ZZ&email=\xff", "headers": {"content-type": "application/x-www-form-urlencoded"}}),
    ("GET", "/ui/idp?r=x&connection_id=conn_1", {}),
    ("GET", "/ui/social?r=x&provider=google", {}),
    ("POST", "/oidc/logout", {"content": b"id_token_hint=a.b.c", "headers": {"content-type": "text/plain"}}),
    ("GET", "/userinfo", {"headers": {"authorization": "Bearer a.b.c"}}),
    ("GET", "/nope", {}),
])
def test_garbage_never_gets_a_500(http, method, path, kwargs):
    resp = http.request(method, path, **kwargs)
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:200])
