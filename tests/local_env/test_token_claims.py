"""Custom access-token claims (--token-claim, seed environment.token_claims), as Scalekit documents
them in authenticate/fsa/session-token-claims.mdx ("Customize session token claims"): a claim key
and an expression over `user` or `organization`; `??` falls back; a claim whose expression resolves
to nothing is left out ("A claim can resolve to nothing"); the default claims cannot be reused as
keys ("Reserved claim keys"); the claim is on every access token, at login and at refresh."""
from __future__ import annotations

import jwt
import pytest
from scalekit_local.seed import SeedError, add_registrations, load_seed

from .helpers import ACME_ORG, GLOBEX_ORG, env_client, exchange, headless_code

CLAIMS = ("--token-claim", "plan=organization.metadata.plan",
          "--token-claim", 'tier=organization.metadata.tier ?? "free"',
          "--token-claim", "team=user.metadata.team",
          "--token-claim", "org_name=user.current_membership.organization_name")


@pytest.fixture(scope="module")
def claims_env(local_scalekit_factory):
    return local_scalekit_factory(auto_login="alice@acme.test", fresh=True, extra_args=CLAIMS)


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_custom_claims_are_on_the_access_token_at_login_and_refresh(claims_env):
    with env_client(claims_env, follow_redirects=False) as client:
        tokens = exchange(client, claims_env, headless_code(client, claims_env.client_id,
                                                            scope="openid email offline_access")).json()
        refreshed = client.post("/oauth/token", data={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
            "client_id": claims_env.client_id, "client_secret": claims_env.client_secret}).json()
    for token in (tokens["access_token"], refreshed["access_token"]):
        claims = claims_of(token)
        assert claims["oid"] == ACME_ORG
        assert claims["plan"] == "enterprise"        # organization.metadata.plan of Acme (default seed)
        assert claims["tier"] == "free"              # missing field: the ?? fallback
        assert claims["org_name"] == "Acme Inc"
        assert "team" not in claims                  # resolves to nothing: left out, the login still works
    assert not {"plan", "tier", "org_name"} & set(claims_of(tokens["id_token"])), "custom claims are for access tokens"


def test_reserved_and_malformed_claims_are_refused():
    seed = load_seed(None)
    for spec, problem in (("sub=user.id", "cannot be overridden"), ("plan", "KEY=EXPRESSION"),
                          ("plan=org.metadata.plan", "neither a field path"), ("x-y=user.id", "letters")):
        with pytest.raises(SeedError, match=problem):
            add_registrations(seed, token_claims=[spec])


def test_globex_users_get_globex_values(local_scalekit_factory):
    env = local_scalekit_factory(auto_login="carol@globex.test", fresh=True, extra_args=CLAIMS[:2])
    with env_client(env, follow_redirects=False) as client:
        tokens = exchange(client, env, headless_code(client, env.client_id)).json()
    claims = claims_of(tokens["access_token"])
    assert claims["oid"] == GLOBEX_ORG and claims["plan"] == "starter"
