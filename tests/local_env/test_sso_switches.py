"""What the modular-SSO templates need from the local environment: a webhook URL registered from the
command line, the hostile-IdP switch, and IdP-initiated login tokens.

Sources: the IdP-initiated token and its claims, sso/guides/idp-init-sso.mdx ("JWT token structure":
organization_id, connection_id, login_hint, exp, nbf, iat, iss; the example lives 300 s) and the
SDKs' get_idp_initiated_login_claims / getIdpInitiatedLoginClaims (a token checked with the
environment's keys, relay_state optional); webhook signatures, both SDKs' verify functions
(research/sdk.md 2.4).
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from scalekit_local.seed import DEFAULT_SEED_PATH, SeedError, add_registrations, load_seed, webhook_secret

from .helpers import ACME_ORG, ACME_SAML, GLOBEX_OIDC, authorize_params, env_client, query_of, sdk_client, trusting
from .test_webhooks import receiver

CLI = Path(__file__).resolve().parents[2] / "scripts" / "local_scalekit.py"


def test_webhook_url_gets_a_stable_secret_and_a_bad_one_is_refused():
    first, second = load_seed(DEFAULT_SEED_PATH), load_seed(DEFAULT_SEED_PATH)
    url = "http://localhost:3100/webhooks/scalekit"
    add_registrations(first, webhook_urls=[url])
    add_registrations(second, webhook_urls=[url])
    assert webhook_secret(first, url).startswith("whsec_")
    assert webhook_secret(first, url) == webhook_secret(second, url)  # a copied secret survives a restart
    add_registrations(second, webhook_urls=["http://localhost:3101/webhooks/scalekit"])
    assert webhook_secret(second, "http://localhost:3101/webhooks/scalekit") != webhook_secret(first, url)
    with pytest.raises(SeedError, match="--webhook-url"):
        add_registrations(load_seed(DEFAULT_SEED_PATH), webhook_urls=["ftp://example.test/hook"])


def test_unknown_hostile_idp_connection_exits_2():
    result = subprocess.run([sys.executable, str(CLI), "--port", "0", "--hostile-idp", "conn_1"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "--hostile-idp: unknown connection 'conn_1'" in result.stderr


def idp_page(client, env) -> dict:
    resp = client.get("/oauth/authorize", params=authorize_params(env.client_id, connection_id=ACME_SAML))
    assert resp.status_code == 302
    return query_of(resp.headers["location"])


@pytest.mark.parametrize("hostile", [False, True])
def test_hostile_idp_asserts_any_email_only_when_switched_on(local_scalekit_factory, hostile):
    env = local_scalekit_factory(extra_args=("--hostile-idp", ACME_SAML) if hostile else ())
    with env_client(env) as client:
        page = idp_page(client, env)
        resp = client.post("/ui/idp", data={"r": page["r"], "connection_id": ACME_SAML,
                                            "email": "carol@globex.test", "action": "approve"})
        if not hostile:
            assert resp.status_code == 400 and "only signs in users of: acme.test" in resp.text
            return
        assert resp.status_code == 302
        code = query_of(resp.headers["location"])["code"]
        tokens = client.post("/oauth/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": "http://localhost:3000/auth/callback",
            "client_id": env.client_id, "client_secret": env.client_secret}).json()
    with trusting(env):
        claims = sdk_client(env).validate_token(tokens["id_token"])
    assert claims["email"] == "carol@globex.test" and claims["amr"] == [ACME_SAML] and claims["oid"] == ACME_ORG


def test_webhook_deliveries_are_signed_with_the_printed_secret(local_scalekit_factory):
    with receiver() as hook:
        env = local_scalekit_factory(fresh=True, extra_args=("--webhook-url", hook.url))
        secret = env.env_vars()["SCALEKIT_WEBHOOK_SECRET"]
        with env_client(env) as client:
            assert client.post("/_local/events", json={"type": "organization.updated", "data": {}}).status_code == 201
        headers, body = hook.wait(1)[0]
    with trusting(env):
        assert sdk_client(env).verify_webhook_payload(secret, headers, body) is True


def test_idp_initiated_login_token_checks_with_the_sdk(local_scalekit):
    with env_client(local_scalekit) as client:
        resp = client.post("/_local/idp-initiated-login", json={
            "connection_id": GLOBEX_OIDC, "login_hint": "carol@globex.test", "relay_state": "from-the-idp"})
        assert resp.status_code == 200
        assert client.post("/_local/idp-initiated-login", json={"connection_id": "conn_1"}).status_code == 404
        assert client.post("/_local/idp-initiated-login", json={"connection": GLOBEX_OIDC}).status_code == 400
    with trusting(local_scalekit):
        from scalekit.common.scalekit import TokenValidationOptions

        claims = sdk_client(local_scalekit).get_idp_initiated_login_claims(
            resp.json()["token"], options=TokenValidationOptions(issuer=local_scalekit.url))
    assert {k: claims[k] for k in ("organization_id", "connection_id", "login_hint", "relay_state")} == {
        "organization_id": "org_70000000000001002", "connection_id": GLOBEX_OIDC,
        "login_hint": "carol@globex.test", "relay_state": "from-the-idp"}
    assert claims["exp"] - claims["iat"] == 300 and claims["nbf"] <= time.time() < claims["exp"]
    assert claims["iss"] == local_scalekit.url
