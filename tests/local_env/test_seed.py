"""Seed loading: the schema, the default seed, and one clear message per bad seed."""
from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from scalekit_local.state.seed import DEFAULT_SEED_PATH, SCHEMA_PATH, SeedError, load_seed

REPO = Path(__file__).resolve().parents[2]
GOOD_CLIENT = "  - {id: skc_123456, secret: s3cret-s3cret, type: environment}\n"


def test_schema_is_valid_and_default_seed_matches():
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    seed = load_seed(None)
    assert seed == yaml.safe_load(DEFAULT_SEED_PATH.read_text())


def seed_client_uris_on_the_page() -> tuple[list[str], list[str]]:
    """The redirect and post-logout URIs reference/local-environment-details.md lists under "Default seed"."""
    page = (REPO / "reference" / "local-environment-details.md").read_text()
    section = page[page.index("\n## Default seed\n"):page.index("\n## ", page.index("\n## Default seed\n") + 1)]
    bullet = next(b for b in section.split("\n- ") if "accepts these redirect URIs" in b)
    redirects, post_logout = bullet.split("post-logout", 1)
    uri = re.compile(r"`(https?://[^`]+)`")
    return uri.findall(redirects), uri.findall(post_logout)


def test_default_seed_has_what_the_docs_promise():
    seed = load_seed(None)
    client = next(c for c in seed["clients"] if c["type"] == "environment")
    assert client["id"].startswith("skc_")
    redirects, post_logout = seed_client_uris_on_the_page()
    assert redirects == client["redirect_uris"]  # the page lists them all, in the seed's order
    assert post_logout == client["post_logout_redirect_uris"]
    for port in (3000, 3100, 8765):  # full-stack templates, modular SSO templates, test_auth_flow.py
        assert f"http://localhost:{port}/" in " ".join(redirects), port
    assert len(seed["users"]) >= 2 and all(u["email"].endswith(".test") for u in seed["users"])
    assert {c["type"] for c in seed["connections"]} == {"SAML", "OIDC"}
    assert all(c["domains"] for c in seed["connections"])
    assert {p["provider"] for p in seed["environment"]["providers"]} == {
        "google", "github", "microsoft", "gitlab", "linkedin", "salesforce"}


@pytest.mark.parametrize("text, message", [
    ("version: 1\nclients: []\n", "clients: [] should be non-empty"),
    ("version: 1\nclients:\n  - {id: skc_123456, secret: s3cret-s3cret, type: environment, colour: red}\n",
     "clients[0].colour: unknown key"),
    ("version: 1\nclients:\n  - {id: skc_123456, type: environment}\n", "clients[0].secret: required key is missing"),
    ("clients:\n" + GOOD_CLIENT, "version: required key is missing"),
    ("version: 2\nclients:\n" + GOOD_CLIENT, "version: must be 1"),
    ("version: 1\nclients:\n  - {id: client-1, secret: s3cret-s3cret, type: environment}\n",
     "clients[0].id: 'client-1' does not have the expected form"),
    ("version: 1\nclients:\n  - {id: skc_123456, secret: s3cret-s3cret, type: public}\n",
     "clients[0].type: 'public' is not one of: environment, m2m"),
    ("version: 1\nclients:\n  - {id: m2morg_123456, secret: s3cret-s3cret, type: m2m}\n",
     "clients: at least one client must have type 'environment'"),
    ("version: 1\nclients:\n" + GOOD_CLIENT + "users:\n  - {id: usr_1234567, email: a@b.test,"
     " memberships: [{organization_id: org_9999999}]}\n",
     "users[0].memberships[0].organization_id: unknown organization 'org_9999999'"),
    ("version: 1\nclients:\n" + GOOD_CLIENT + "organizations:\n  - {id: org_1234567, display_name: A}\n"
     "users:\n  - {id: usr_1234567, email: a@b.test, memberships: [{organization_id: org_1234567, roles: [boss]}]}\n",
     "users[0].memberships[0].roles[0]: unknown role 'boss'"),
    ("version: 1\nclients:\n" + GOOD_CLIENT + "users:\n  - {id: usr_1234567, email: a@b.test}\n"
     "  - {id: usr_7654321, email: A@b.test}\n", "users[1].email: 'A@b.test' is used twice"),
    ("version: 1\nclients:\n" + GOOD_CLIENT + "organizations:\n  - {id: org_1234567, display_name: A}\n"
     "connections:\n  - {id: conn_1234567, organization_id: org_1234567, type: SAML, domains: [a.test]}\n"
     "  - {id: conn_7654321, organization_id: org_1234567, type: OIDC, domains: [a.test]}\n",
     "connections[1].domains[0]: 'a.test' already belongs to conn_1234567"),
    ("version: 1\nclients:\n" + GOOD_CLIENT + "connections:\n  - {id: conn_1234567, organization_id: org_1234567, type: SAML}\n",
     "connections[0].organization_id: unknown organization 'org_1234567'"),
    ("version: 1\nclients:\n" + GOOD_CLIENT + "connections:\n  - {id: conn_1234567, organization_id: org_1234567, type: LDAP}\n",
     "connections[0].type: 'LDAP' is not one of: SAML, OIDC"),
    ("version: 1\nclients:\n  - {id: skc_123456, secret: s3cret-s3cret, type: environment, redirect_uris: [not a url]}\n",
     "clients[0].redirect_uris[0]: 'not a url' does not have the expected form"),
    # Keys added for issue #14: references are checked too.
    ("version: 1\nclients:\n" + GOOD_CLIENT + "organizations:\n  - {id: org_1234567, display_name: A}\n"
     "users:\n  - {id: usr_1234567, email: a@b.test}\n"
     "api_tokens:\n  - {token: test_apikey_aaaaaaaaaaaaaaaaaaaa, organization_id: org_1234567, user_id: usr_1234567}\n",
     "api_tokens[0].user_id: 'usr_1234567' is not a member of 'org_1234567'"),
    ("version: 1\nclients:\n" + GOOD_CLIENT + "api_tokens:\n  - {token: short, organization_id: org_1234567}\n",
     "api_tokens[0].token: 'short' is too short"),
    ("version: 1\nenvironment: {default_roles: {member: boss}}\nclients:\n" + GOOD_CLIENT,
     "environment.default_roles.member: unknown role 'boss'"),
    ("version: 1\nenvironment: {passwordless: {type: SMS}}\nclients:\n" + GOOD_CLIENT,
     "environment.passwordless.type: 'SMS' is not one of: OTP, LINK, LINK_OTP"),
    ("version: 1\nclients:\n" + GOOD_CLIENT + "users:\n  - {id: usr_1234567, email: a@b.test, passkeys: [{id: pk_123456}]}\n"
     "  - {id: usr_7654321, email: c@b.test, passkeys: [{id: pk_123456}]}\n",
     "users[1].passkeys[0].id: 'pk_123456' is used twice"),
    ("version: 1\nclients: [\n", "not valid YAML (line"),
    ("- just\n- a list\n", "must be a mapping"),
])
def test_bad_seed_gives_one_line_naming_the_key(tmp_path, text, message):
    path = tmp_path / "seed.yaml"
    path.write_text(text)
    with pytest.raises(SeedError) as info:
        load_seed(path)
    text_of_error = str(info.value)
    assert message in text_of_error
    assert "\n" not in text_of_error and text_of_error.startswith(str(path))


def test_reserved_sections_are_accepted(tmp_path):
    path = tmp_path / "seed.yaml"
    path.write_text("version: 1\nclients:\n" + GOOD_CLIENT + "resources: []\nwebhooks: []\ndirectories: []\n")
    assert load_seed(path)["resources"] == []
