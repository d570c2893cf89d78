"""The unmodified scalekit-sdk-python against the local environment (in-process, TLS)."""
from __future__ import annotations

import time

import jwt
import pytest
import requests
from scalekit import AuthorizationUrlOptions, CodeAuthenticationOptions, ScalekitClient
from scalekit.common.exceptions import (
    ScalekitBadRequestException,
    ScalekitNotFoundException,
    ScalekitValidateTokenFailureException,
)
from scalekit.common.scalekit import LogoutUrlOptions, TokenValidationOptions

from .helpers import (ACME_ORG, ALICE, GLOBEX_ORG, M2M_ID, M2M_SECRET, PASSWORD_CONN, POST_LOGOUT, REDIRECT, pkce_pair,
                      query_of, s256)


def login(client: ScalekitClient, env_url: str, code_verifier: str | None = None, browser=requests, **options) -> dict:
    """get_authorization_url -> headless /oauth/authorize -> authenticate_with_code. Pass a
    requests.Session as `browser` to keep the environment's session cookie, as a browser would."""
    opts = AuthorizationUrlOptions()
    opts.scopes = ["openid", "profile", "email", "offline_access"]
    opts.state = "py-state"
    opts.nonce = "py-nonce"
    for key, value in options.items():
        setattr(opts, key, value)
    url = client.get_authorization_url(REDIRECT, opts)
    assert url.startswith(f"{env_url}/oauth/authorize?")
    if code_verifier:  # the Python SDK cannot add PKCE parameters itself
        url += "&code_challenge_method=S256&code_challenge=" + s256(code_verifier)
    resp = browser.get(url, allow_redirects=False, timeout=10)
    assert resp.status_code == 302, resp.text
    query = query_of(resp.headers["location"])
    assert query["state"] == "py-state"
    code_opts = CodeAuthenticationOptions()
    if code_verifier:
        code_opts.code_verifier = code_verifier
    return client.authenticate_with_code(query["code"], REDIRECT, code_opts)


def test_constructor_fetches_its_token_and_login_round_trip(py_client, autologin):
    result = login(py_client, autologin.url)
    assert result["user"]["email"] == ALICE
    assert result["user"]["givenName"] == "Alice"
    assert result["organization_id"] == ACME_ORG
    assert result["connection_id"] == PASSWORD_CONN
    assert result["refresh_token"]
    assert result["expires_in"] == 300
    id_claims = jwt.decode(result["id_token"], options={"verify_signature": False})
    assert id_claims["nonce"] == "py-nonce"
    assert id_claims["amr"] == [PASSWORD_CONN]
    assert id_claims["iss"] == autologin.url


def test_pkce_login_with_python_sdk(py_client, autologin):
    verifier, _ = pkce_pair()
    result = login(py_client, autologin.url, code_verifier=verifier)
    assert result["user"]["email"] == ALICE


def test_validate_token_checks_issuer_audience_and_scopes(py_client, autologin):
    token = login(py_client, autologin.url)["access_token"]
    claims = py_client.validate_token(token, TokenValidationOptions(issuer=autologin.url, audience=[autologin.client_id]))
    assert claims["iss"] == autologin.url
    assert claims["sub"].startswith("usr_")
    assert claims["sid"].startswith("ses_")
    assert claims["oid"] == ACME_ORG
    assert claims["roles"] == ["admin"]
    assert "users:write" in claims["permissions"]
    assert claims["scope"].split() == ["openid", "profile", "email", "offline_access"]
    assert "email" not in claims  # in the ID token and at /userinfo, not in the access token
    # required_scopes reads a `scopes` array, which user access tokens do not carry: even granted
    # scopes are refused (reference/sdk-gotchas.md).
    with pytest.raises(ScalekitValidateTokenFailureException, match="missing required scopes: openid"):
        py_client.validate_token(token, TokenValidationOptions(issuer=autologin.url, required_scopes=["openid"]))
    assert py_client.validate_access_token(token) is True
    assert py_client.validate_access_token(token, TokenValidationOptions(audience=["someone-else"])) is False
    assert py_client.validate_access_token(token, TokenValidationOptions(issuer="https://other.example")) is False
    with pytest.raises(ScalekitValidateTokenFailureException):
        py_client.validate_access_token_and_get_claims(
            token, TokenValidationOptions(issuer=autologin.url, required_scopes=["admin:everything"]))


def test_no_refresh_token_without_offline_access(py_client, autologin):
    result = login(py_client, autologin.url, scopes=["openid", "profile", "email"])
    assert result["refresh_token"] is None


def test_refresh_rotates_the_token(py_client, autologin):
    first = login(py_client, autologin.url)
    refreshed = py_client.refresh_access_token(first["refresh_token"])
    assert refreshed["refresh_token"] != first["refresh_token"]
    assert py_client.validate_access_token(refreshed["access_token"]) is True
    second = py_client.refresh_access_token(refreshed["refresh_token"])
    assert second["refresh_token"] not in (first["refresh_token"], refreshed["refresh_token"])


def test_logout_url_ends_the_session(py_client, autologin):
    browser = requests.Session()  # the browser's redirect carries the session cookie (test_fidelity.py)
    result = login(py_client, autologin.url, browser=browser)
    url = py_client.get_logout_url(LogoutUrlOptions(id_token_hint=result["id_token"],
                                                    post_logout_redirect_uri=POST_LOGOUT, state="bye"))
    resp = browser.get(url, allow_redirects=False, timeout=10)
    assert resp.status_code == 302
    assert resp.headers["location"] == POST_LOGOUT + "?state=bye"
    with pytest.raises(ScalekitBadRequestException) as info:
        py_client.refresh_access_token(result["refresh_token"])
    assert "invalid_grant" in str(info.value)


def test_client_credentials_tokens(py_client, autologin):
    own = py_client.get_client_access_token()
    claims = py_client.validate_token(own, TokenValidationOptions(issuer=autologin.url))
    assert claims["sub"] == claims["client_id"] == autologin.client_id

    m2m = py_client.generate_client_token(M2M_ID, M2M_SECRET, scopes=["orders:read"])
    claims = py_client.validate_token(m2m, TokenValidationOptions(
        issuer=autologin.url, audience=["https://api.acme.test"], required_scopes=["orders:read"]))
    assert claims["oid"] == ACME_ORG and claims["scopes"] == ["orders:read"]
    with pytest.raises(ScalekitValidateTokenFailureException):
        py_client.validate_access_token_and_get_claims(m2m, TokenValidationOptions(required_scopes=["orders:write"]))


def test_management_calls(py_client):
    resp, call = py_client.organization.get_organization(ACME_ORG)
    assert call.code().name == "OK"
    assert resp.organization.display_name == "Acme Inc"
    assert resp.organization.external_id == "acme"
    by_external, _ = py_client.organization.get_organization_by_external_id("globex")
    assert by_external.organization.id == GLOBEX_ORG
    listed, _ = py_client.organization.list_organizations(page_size=1)
    assert listed.total_size == 2 and len(listed.organizations) == 1 and listed.next_page_token
    rest, _ = py_client.organization.list_organizations(page_size=1, page_token=listed.next_page_token)
    # Newest first, as the hosted service lists (issue #14); the seed creates Acme, then Globex.
    assert [o.id for o in [*listed.organizations, *rest.organizations]] == [GLOBEX_ORG, ACME_ORG]
    assert rest.next_page_token == "" and rest.prev_page_token == "0"
    with pytest.raises(ScalekitNotFoundException) as info:
        py_client.organization.get_organization("org_404404404404404")
    assert info.value.error_code == "ORGANIZATION_NOT_FOUND"


def test_trailing_slash_in_env_url(autologin, sdk_env):
    client = ScalekitClient(autologin.url + "/", autologin.client_id, autologin.client_secret)
    assert client.validate_access_token(client.get_client_access_token()) is True
    resp, _ = client.organization.list_organizations()
    assert resp.total_size == 2


def test_localhost_alias_gets_its_own_issuer(autologin, sdk_env):
    alias = autologin.url.replace("127.0.0.1", "localhost")
    client = ScalekitClient(alias, autologin.client_id, autologin.client_secret)
    token = client.get_client_access_token()
    assert client.validate_token(token, TokenValidationOptions(issuer=alias))["iss"] == alias
    assert client.organization.get_organization(ACME_ORG)[0].organization.id == ACME_ORG


def test_sdk_reauthenticates_after_its_token_expires(local_scalekit_factory, sdk_env):
    short = local_scalekit_factory(access_token_ttl=2, fresh=True)
    client = ScalekitClient(short.url, short.client_id, short.client_secret)
    client.organization.list_organizations()
    before = short.stats()
    time.sleep(2.3)  # exp is at most 2 s after issue
    resp, _ = client.organization.list_organizations()
    assert resp.total_size == 2
    after = short.stats()
    refused = after.get("grpc.unauthenticated", 0) - before.get("grpc.unauthenticated", 0)
    # At least one refusal; on a loaded machine the new 2 s token may expire again before the retry,
    # but every refusal must be followed by exactly one new token.
    assert refused >= 1
    assert after["token.client_credentials"] - before["token.client_credentials"] == refused


def test_keys_fetched_once_per_client(autologin, sdk_env):
    client = ScalekitClient(autologin.url, autologin.client_id, autologin.client_secret)
    token = client.get_client_access_token()
    before = autologin.stats().get("keys", 0)
    assert all(client.validate_access_token(token) for _ in range(5))
    assert autologin.stats()["keys"] == before + 1
