"""The RPCs issue #14 found missing, with the unmodified Python SDK: API keys, passwordless email
(read from /_local/mailbox), invitations and ResendInvite, default roles and role bases, directory
create/delete, environment and app connections, passkeys, events, MCP resources with their clients,
secrets and user consents; plus the fields that were dropped (logo_url, locale, dotted slugs). Each
emulated fact names its source in the service module's docstring."""
from __future__ import annotations

import base64
import time

import pytest

from .helpers import ACME_ORG, ALICE, GLOBEX_ORG, env_client, pkce_pair, query_of, sdk_client, trusting
from .test_management_python import password_login, raises

ALICE_ID = "usr_70000000000003001"
BOB_ID = "usr_70000000000003002"
SEEDED_KEY = "test_apikey_Nb4Vc7Xz1Lk8Jh5Gf2Ds9Ap6Qw3Er0Ty"
RESOURCE = "res_70000000000004001"
RESOURCE_URL = "http://localhost:8000/mcp"
STATIC_CLIENT, STATIC_SECRET = "m2m_70000000000004101", "test_mcp_Qw7Er4Ty1Ui8Op5As2Df9Gh6Jk3Lz0Xc"
STATIC_CALLBACK = "http://localhost:3000/mcp/callback"
MAGIC = "https://app.example.test/passwordless/verify"


@pytest.fixture(scope="module")
def env(local_scalekit_factory):
    return local_scalekit_factory(fresh=True)


@pytest.fixture(scope="module")
def sk(env, sdk_env):
    return sdk_client(env)


@pytest.fixture
def http(env):
    with env_client(env, follow_redirects=False) as client:
        yield client


def mailbox(http, to: str) -> list[dict]:
    return http.get("/_local/mailbox.json", params={"to": to}).json()["messages"]


# ---- API keys -------------------------------------------------------------------------------------
def test_api_keys(sk):
    from scalekit.common.exceptions import ScalekitValidateTokenFailureException

    seeded = sk.tokens.validate_token(SEEDED_KEY).token_info
    assert (seeded.token_id, seeded.organization_id, seeded.organization_external_id) == ("apit_70000000000007001", ACME_ORG, "acme")
    assert seeded.user_id == ALICE_ID and seeded.email == ALICE and list(seeded.roles) == ["admin"]
    assert dict(seeded.custom_claims) == {"environment": "staging"} and seeded.token_suffix == SEEDED_KEY[-4:]

    created = sk.tokens.create_token(ACME_ORG, custom_claims={"team": "ops", "env": "prod"}, description="CI")
    assert created.token and created.token_id.startswith("apit_") and not created.token_info.HasField("user_id")
    assert sk.tokens.validate_token(created.token).token_info.token_id == created.token_id
    assert sk.tokens.validate_token(created.token_id).token_info.description == "CI"  # the id works too
    user_key = sk.tokens.create_token(ACME_ORG, user_id=BOB_ID)

    listed = sk.tokens.list_tokens(ACME_ORG, page_size=2)
    assert listed.total_count == 3 and [t.token_id for t in listed.tokens] == [user_key.token_id, created.token_id]
    assert [t.token_id for t in sk.tokens.list_tokens(ACME_ORG, user_id=BOB_ID).tokens] == [user_key.token_id]
    assert sk.tokens.list_tokens(GLOBEX_ORG).total_count == 0
    raises("ScalekitBadRequestException", "INVALID_ARGUMENT", sk.tokens.list_tokens, ACME_ORG, page_size=31)

    # The Python SDK merges claims (an empty value removes one); the server replaces the map it gets.
    updated = sk.tokens.update_token(created.token, custom_claims={"env": "", "tier": "gold"}, description="CI v2")
    assert dict(updated.token_info.custom_claims) == {"team": "ops", "tier": "gold"}
    assert updated.token_info.description == "CI v2"

    sk.tokens.invalidate_token(created.token_id)
    sk.tokens.invalidate_token(created.token)  # idempotent
    with pytest.raises(ScalekitValidateTokenFailureException):
        sk.tokens.validate_token(created.token)
    with pytest.raises(ScalekitValidateTokenFailureException):
        sk.tokens.validate_token("not-a-key-at-all-000000")
    assert sk.tokens.list_tokens(ACME_ORG).total_count == 2

    from google.protobuf.timestamp_pb2 import Timestamp

    soon = Timestamp(seconds=int(time.time()) + 2)
    short = sk.tokens.create_token(ACME_ORG, expiry=soon)
    assert sk.tokens.validate_token(short.token).token_info.expiry.seconds == soon.seconds
    time.sleep(2.2)
    with pytest.raises(ScalekitValidateTokenFailureException):
        sk.tokens.validate_token(short.token)
    raises("ScalekitNotFoundException", "ORGANIZATION_NOT_FOUND", sk.tokens.create_token, "org_404404404404404")
    raises("ScalekitBadRequestException", "INVALID_ARGUMENT", sk.tokens.create_token, GLOBEX_ORG, user_id=ALICE_ID)


# ---- passwordless ----------------------------------------------------------------------------------
def test_passwordless_code_and_link(sk, http):
    from scalekit.v1.auth.passwordless_pb2 import LINK_OTP

    # The default seed sends codes and links: the link target is required (developer-docs quickstart).
    raises("ScalekitBadRequestException", "INVALID_ARGUMENT", sk.passwordless.send_passwordless_email, "dana@acme.test")
    sent = sk.passwordless.send_passwordless_email("Dana@Acme.test", template="SIGNIN", state="st-1",
                                                   magiclink_auth_uri=MAGIC, template_variables={"team": "Alpha"})[0]
    assert sent.passwordless_type == LINK_OTP and sent.expires_in == 300
    assert abs(sent.expires_at - (time.time() + 300)) < 5
    mail = mailbox(http, "dana@acme.test")[0]
    assert mail["auth_request_id"] == sent.auth_request_id and len(mail["code"]) == 6 and mail["code"].isdigit()
    assert mail["link"].startswith(MAGIC + "?link_token=") and mail["link"].endswith("_l")
    page = http.get("/_local/mailbox")
    assert page.status_code == 200 and mail["code"] in page.text

    raises("ScalekitBadRequestException", "INVALID_ARGUMENT", sk.passwordless.verify_passwordless_email,
           code=mail["code"])  # a code needs its auth_request_id
    verified = sk.passwordless.verify_passwordless_email(code=mail["code"], auth_request_id=sent.auth_request_id)[0]
    assert (verified.email, verified.state, verified.passwordless_type) == ("dana@acme.test", "st-1", LINK_OTP)
    raises("ScalekitBadRequestException", "INVALID_ARGUMENT", sk.passwordless.verify_passwordless_email,
           code=mail["code"], auth_request_id=sent.auth_request_id)  # used once

    again = sk.passwordless.send_passwordless_email("erin@acme.test", magiclink_auth_uri=MAGIC, expires_in=120)[0]
    assert again.expires_in == 120
    resent = sk.passwordless.resend_passwordless_email(again.auth_request_id)[0]
    assert resent.auth_request_id == again.auth_request_id and len(mailbox(http, "erin@acme.test")) == 2
    link_token = query_of(mailbox(http, "erin@acme.test")[0]["link"])["link_token"]
    assert sk.passwordless.verify_passwordless_email(link_token=link_token)[0].email == "erin@acme.test"
    raises("ScalekitNotFoundException", "AUTH_REQUEST_NOT_FOUND", sk.passwordless.resend_passwordless_email, "nope")


def test_passwordless_five_wrong_attempts_then_429(sk, http):
    from scalekit.common.exceptions import ScalekitTooManyRequestsException

    sent = sk.passwordless.send_passwordless_email("frank@acme.test", magiclink_auth_uri=MAGIC)[0]
    code = mailbox(http, "frank@acme.test")[0]["code"]
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        raises("ScalekitBadRequestException", "INVALID_ARGUMENT", sk.passwordless.verify_passwordless_email,
               code=wrong, auth_request_id=sent.auth_request_id)
    with pytest.raises(ScalekitTooManyRequestsException):  # developer-docs: HTTP 429 after five attempts
        sk.passwordless.verify_passwordless_email(code=code, auth_request_id=sent.auth_request_id)


# ---- invitations ------------------------------------------------------------------------------------
def test_invitations_and_resend(sk, env, http):
    from scalekit.v1.commons.commons_pb2 import ACTIVE, PENDING_INVITE
    from scalekit.v1.users.users_pb2 import CreateUser, CreateUserProfile

    user = sk.users.create_user_and_membership(ACME_ORG, CreateUser(
        email="gus@acme.test", user_profile=CreateUserProfile(first_name="Gus", locale="fr-FR")))[0].user  # invites by default
    assert user.memberships[0].membership_status == PENDING_INVITE and not user.user_profile.email_verified
    assert user.user_profile.locale == "fr-FR"
    assert user.memberships[0].expires_at.seconds - time.time() == pytest.approx(15 * 24 * 3600, abs=60)
    assert mailbox(http, "gus@acme.test")[0]["kind"] == "invitation"

    invite = sk.users.resend_invite(ACME_ORG, user.id)[0].invite
    assert (invite.status, invite.resent_count, invite.user_id) == ("PENDING_INVITE", 1, user.id)
    assert sk.users.resend_invite(ACME_ORG, user.id)[0].invite.resent_count == 2
    assert len(mailbox(http, "gus@acme.test")) == 3

    # Signing in accepts the invitation.
    assert http.post("/_local/users/password", json={"user_id": user.id, "password": "gus-password"}).is_success
    password_login(http, env, "gus@acme.test", "gus-password")
    after = sk.users.get_user(user.id)[0].user
    assert after.memberships[0].membership_status == ACTIVE and after.user_profile.email_verified
    err = raises("ScalekitBadRequestException", "INVALID_ARGUMENT", sk.users.resend_invite, ACME_ORG, user.id)
    assert "invite already accepted" in str(err)

    quiet = sk.users.create_user_and_membership(ACME_ORG, CreateUser(email="hana@acme.test"),
                                                send_invitation_email=False)[0].user
    assert quiet.memberships[0].membership_status == ACTIVE and quiet.user_profile.email_verified
    assert mailbox(http, "hana@acme.test") == []
    raises("ScalekitNotFoundException", "MEMBERSHIP_NOT_FOUND", sk.users.resend_invite, GLOBEX_ORG, user.id)


# ---- roles -----------------------------------------------------------------------------------------------
def test_default_roles_and_role_bases(sk):
    from scalekit.v1.roles.roles_pb2 import (CreateOrganizationRole, CreateRole, UpdateDefaultOrganizationRolesRequest)
    from scalekit.v1.users.users_pb2 import CreateUser

    sk.roles.create_role(CreateRole(name="viewer", display_name="Viewer", permissions=["organization:read"]))
    defaults = sk.roles.update_default_roles(default_creator_role="admin", default_member_role="viewer")[0]
    assert defaults.default_member.name == "viewer" and defaults.default_member.default_member
    assert defaults.default_creator.name == "admin" and defaults.default_creator.default_creator
    assert sk.roles.get_role("viewer")[0].role.default_member and not sk.roles.get_role("member")[0].role.default_member
    newcomer = sk.users.create_user_and_membership(GLOBEX_ORG, CreateUser(email="ivy@globex.test"),
                                                   send_invitation_email=False)[0].user
    assert [r.name for r in newcomer.memberships[0].roles] == ["viewer"]
    raises("ScalekitNotFoundException", "ROLE_NOT_FOUND", sk.roles.update_default_roles,
           default_creator_role="admin", default_member_role="nobody")

    sk.roles.create_organization_role(ACME_ORG, CreateOrganizationRole(name="acme_guest", display_name="Guest"))
    org_default = sk.roles.update_default_organization_roles(
        ACME_ORG, UpdateDefaultOrganizationRolesRequest(default_member_role="acme_guest"))[0]
    assert org_default.default_member.name == "acme_guest"
    joiner = sk.users.create_user_and_membership(ACME_ORG, CreateUser(email="jo@acme.test"),
                                                 send_invitation_email=False)[0].user
    assert [r.name for r in joiner.memberships[0].roles] == ["acme_guest"]

    sk.roles.create_role(CreateRole(name="senior", display_name="Senior", extends="viewer"))
    assert sk.roles.get_role("senior")[0].role.extends == "viewer"
    sk.roles.delete_role_base("senior")
    assert not sk.roles.get_role("senior")[0].role.HasField("extends")
    sk.roles.create_organization_role(ACME_ORG, CreateOrganizationRole(name="acme_lead", display_name="Lead",
                                                                       extends="acme_guest"))
    sk.roles.delete_organization_role_base(ACME_ORG, "acme_lead")
    assert not sk.roles.get_organization_role(ACME_ORG, "acme_lead")[0].role.HasField("extends")

    in_use = raises("ScalekitBadRequestException", "ROLE_IN_USE", sk.roles.delete_role, "viewer")
    assert "role cannot be deleted as it is assigned to users" in str(in_use)


# ---- directories, connections, passkeys, events ----------------------------------------------------------
def test_directory_create_and_delete(sk):
    from scalekit.v1.directories.directories_pb2 import OKTA, SCIM, CreateDirectory

    created = sk.directory.create_directory(GLOBEX_ORG, CreateDirectory(directory_type=SCIM, directory_provider=OKTA))[0]
    d = created.directory
    assert d.id.startswith("dir_") and d.organization_id == GLOBEX_ORG and not d.enabled
    assert d.id in [x.id for x in sk.directory.list_directories(GLOBEX_ORG)[0].directories]
    sk.directory.delete_directory(GLOBEX_ORG, d.id)
    raises("ScalekitNotFoundException", "DIRECTORY_NOT_FOUND", sk.directory.get_directory, GLOBEX_ORG, d.id)
    raises("ScalekitBadRequestException", "INVALID_ARGUMENT", sk.directory.create_directory, GLOBEX_ORG, CreateDirectory())


def test_environment_and_app_connections(sk):
    from scalekit.v1.connections.connections_pb2 import OAUTH, CreateConnection, Flags, UpdateConnection
    from google.protobuf.wrappers_pb2 import StringValue

    google = sk.connection.get_environment_connection("conn_70000000000000201")[0].connection
    assert google.type == OAUTH and google.provider_key == "google" and google.enabled
    apps = sk.connection.list_app_connections()[0]
    assert [c.key_id for c in apps.connections] == ["hubspot-crm"] and apps.total_size == 1

    made = sk.connection.create_environment_connection(CreateConnection(type=OAUTH, provider_key="salesforce", key_id="sf-main"),
                                                       Flags(is_app=True))[0].connection
    assert made.id.startswith("conn_") and made.key_id == "sf-main"
    listed = sk.connection.list_app_connections(page_size=10)[0]
    assert [c.key_id for c in listed.connections] == ["sf-main", "hubspot-crm"]  # newest first
    assert [c.key_id for c in sk.connection.list_app_connections(provider="hubspot")[0].connections] == ["hubspot-crm"]
    assert [c.key_id for c in sk.connection.list_app_connections(query="sf-m")[0].connections] == ["sf-main"]
    renamed = sk.connection.update_environment_connection(
        made.id, UpdateConnection(ui_button_title=StringValue(value="Salesforce CRM")))[0].connection
    assert renamed.ui_button_title == "Salesforce CRM"
    raises("ScalekitNotFoundException", "CONNECTION_NOT_FOUND", sk.connection.get_environment_connection,
           "conn_70000000000002001")  # an organization's connection is not an environment connection
    raises("ScalekitBadRequestException", "INVALID_ARGUMENT", sk.connection.list_app_connections, query="ab")


def test_passkeys(sk):
    listed = sk.webauthn.list_credentials(ALICE_ID)[0]
    assert [(c.id, c.display_name) for c in listed.credentials] == [("pk_alice_laptop", "Alice's laptop")]
    assert listed.all_accepted_credentials_options.rp_id == "127.0.0.1"
    renamed = sk.webauthn.update_credential("pk_alice_laptop", "Work laptop")[0].credential
    assert renamed.display_name == "Work laptop"
    gone = sk.webauthn.delete_credential("pk_alice_laptop")[0]
    assert gone.success and gone.unknown_credential_options.credential_id == "pk_alice_laptop"
    assert list(sk.webauthn.list_credentials(ALICE_ID)[0].credentials) == []
    raises("ScalekitNotFoundException", "CREDENTIAL_NOT_FOUND", sk.webauthn.delete_credential, "pk_alice_laptop")


def test_events(sk):
    from scalekit.v1.events.events_pb2 import EventFilter
    from scalekit.v1.organizations.organizations_pb2 import CreateOrganization

    org = sk.organization.create_organization(CreateOrganization(display_name="Eventful"))[0].organization
    found = sk.events.list_events_paginated(page_size=5, filter=EventFilter(event_types=["organization.created"]))[0]
    assert found.events[0].organization_id == org.id and found.events[0].type == "organization.created"
    assert found.events[0].data["display_name"] == "Eventful" or found.events[0].data["name"] == "Eventful"
    raises("ScalekitBadRequestException", "INVALID_ARGUMENT", sk.events.list_events_paginated, page_size=101)


# ---- fields that were dropped ------------------------------------------------------------------------
def test_logo_url_locale_and_dotted_slugs(sk):
    from scalekit.v1.organizations.organizations_pb2 import CreateOrganization, UpdateOrganization
    from scalekit.v1.users.users_pb2 import UpdateUser, UpdateUserProfile

    org = sk.organization.create_organization(CreateOrganization(
        display_name="Megasoft", slug="auth.megasoft.com", logo_url="https://megasoft.test/logo.png"))[0].organization
    assert org.slug == "auth.megasoft.com" and org.logo_url == "https://megasoft.test/logo.png"
    again = sk.organization.update_organization(org.id, UpdateOrganization(logo_url="https://megasoft.test/new.png"))[0]
    assert sk.organization.get_organization(org.id)[0].organization.logo_url == "https://megasoft.test/new.png" == again.organization.logo_url
    assert sk.organization.get_organization(ACME_ORG)[0].organization.logo_url == "https://acme.test/logo.png"  # seeded
    raises("ScalekitBadRequestException", "INVALID_ARGUMENT", sk.organization.create_organization,
           CreateOrganization(display_name="Bad", slug=".starts-with-dot"))
    assert sk.users.get_user(ALICE_ID)[0].user.user_profile.locale == "en-US"  # seeded
    updated = sk.users.update_user(BOB_ID, UpdateUser(user_profile=UpdateUserProfile(locale="de-DE")))[0].user
    assert updated.user_profile.locale == "de-DE" == sk.users.get_user(BOB_ID)[0].user.user_profile.locale


# ---- MCP resources, their clients, secrets and consents --------------------------------------------------
def test_resources_and_resource_clients(sk, http):
    from scalekit.v1.clients.clients_pb2 import MCP_SERVER, CustomClaim, ResourceClient

    resource = sk.resources.get_resource(RESOURCE)[0].resource
    assert resource.resource_uri == RESOURCE_URL and resource.resource_type == MCP_SERVER
    assert sorted(s.name for s in resource.scopes if s.enabled) == ["todo:read", "todo:write"]
    assert [r.id for r in sk.resources.list_resources(MCP_SERVER)[0].resources] == [RESOURCE]
    raises("ScalekitBadRequestException", "INVALID_ARGUMENT", sk.resources.list_resources, 0)

    created = sk.resources.create_resource_client(RESOURCE, ResourceClient(
        name="Desk app", scopes=["todo:read"], redirect_uris=["http://127.0.0.1:5000/cb"],
        custom_claims=[CustomClaim(key="tier", value="gold")]))[0]
    client_id, secret = created.client.client_id, created.plain_secret
    assert client_id.startswith("m2m_") and created.client.resource_id == RESOURCE and not created.client.is_dcr
    listed = sk.resources.list_resource_clients(RESOURCE)[0]
    assert {STATIC_CLIENT, client_id} <= {c.client_id for c in listed.clients} and listed.total_static_clients >= 2

    updated = sk.resources.update_resource_client(RESOURCE, client_id, name="Desk app 2", scopes=["todo:read", "todo:write"],
                                                  expiry=999)[0].client
    assert updated.name == "Desk app 2" and list(updated.scopes) == ["todo:read", "todo:write"]
    assert updated.expiry == 0  # not honoured by the server (scalekit/resource.py)

    # Secrets: at most five, at least one.
    extra = [sk.resources.create_resource_client_secret(RESOURCE, client_id)[0] for _ in range(4)]
    err = raises("ScalekitBadRequestException", "INVALID_ARGUMENT", sk.resources.create_resource_client_secret, RESOURCE, client_id)
    assert "only 5 secrets are allowed" in str(err)
    for s in [created.client.secrets[0], *[e.secret for e in extra[:3]]]:
        sk.resources.delete_resource_client_secret(RESOURCE, client_id, s.id)
    err = raises("ScalekitBadRequestException", "INVALID_ARGUMENT", sk.resources.delete_resource_client_secret,
                 RESOURCE, client_id, extra[3].secret.id)
    assert "at least one secret is required" in str(err)
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    refused = http.post("/oauth/token", data={"grant_type": "authorization_code", "code": "x", "code_verifier": "v" * 43},
                        headers={"Authorization": f"Basic {basic}"})
    assert refused.status_code == 401  # its first secret was deleted

    sk.resources.delete_resource_client(RESOURCE, client_id)
    raises("ScalekitNotFoundException", "CLIENT_NOT_FOUND", sk.resources.get_resource_client, RESOURCE, client_id)


def test_user_consents_are_recorded_and_revoked(local_scalekit_factory, sdk_env):
    """A headless MCP login with the seed's static client records alice's consent; revoking it revokes
    the client's refresh tokens for her (access tokens stay valid until they expire)."""
    env = local_scalekit_factory(auto_login=ALICE, fresh=True)
    with trusting(env):
        sk = sdk_client(env)
    verifier, challenge = pkce_pair()
    basic = base64.b64encode(f"{STATIC_CLIENT}:{STATIC_SECRET}".encode()).decode()
    with env_client(env, follow_redirects=False) as http:
        resp = http.get("/oauth/authorize", params={
            "response_type": "code", "client_id": STATIC_CLIENT, "redirect_uri": STATIC_CALLBACK, "state": "s",
            "code_challenge": challenge, "code_challenge_method": "S256", "scope": "todo:read offline_access",
            "resource": RESOURCE_URL})
        assert resp.status_code == 302, resp.text
        tokens = http.post("/oauth/token", headers={"Authorization": f"Basic {basic}"}, data={
            "grant_type": "authorization_code", "code": query_of(resp.headers["location"])["code"],
            "redirect_uri": STATIC_CALLBACK, "code_verifier": verifier}).json()
        assert "refresh_token" in tokens, tokens

        consents = sk.resources.list_user_consents(RESOURCE)[0]
        assert consents.total_size == 1
        consent = consents.consents[0]
        assert (consent.client_id, consent.external_user_id, list(consent.scopes)) == \
            (STATIC_CLIENT, ALICE_ID, ["offline_access", "todo:read"])
        assert consent.client_name == "Todo web client" and consent.id.startswith("usrcnst_")
        assert sk.resources.list_user_consents(RESOURCE, user_ids=["nobody"])[0].total_size == 0
        assert sk.resources.list_user_consents(RESOURCE, search=ALICE_ID[-6:].upper())[0].total_size == 1
        got = sk.resources.get_resource_client(RESOURCE, STATIC_CLIENT)[0]
        assert [u.external_user_id for u in got.consented_users] == [ALICE_ID]

        sk.resources.revoke_user_consent(STATIC_CLIENT, consent.id)
        assert sk.resources.list_user_consents(RESOURCE)[0].total_size == 0
        refreshed = http.post("/oauth/token", headers={"Authorization": f"Basic {basic}"}, data={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
        assert refreshed.json()["error"] == "invalid_grant"
        raises("ScalekitNotFoundException", "CONSENT_NOT_FOUND", sk.resources.revoke_user_consent, STATIC_CLIENT, consent.id)
