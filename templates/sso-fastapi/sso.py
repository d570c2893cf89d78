"""Enterprise SSO added to the app. Scalekit runs SAML or OIDC with each customer's identity
provider (IdP) and returns a verified profile; this file turns that profile into one of the app's
own users and sessions. Scalekit's tokens are read here once and never stored."""
from __future__ import annotations

import base64
import hashlib
import os
import secrets
import sqlite3
import time
from urllib.parse import urlencode

import db
from scalekit import AuthorizationUrlOptions, CodeAuthenticationOptions, ScalekitClient
from scalekit.common.exceptions import (ScalekitBadRequestException, ScalekitForbiddenException,
                                        ScalekitNotFoundException, ScalekitUnauthorizedException)
from scalekit.common.scalekit import TokenValidationOptions
from scalekit.v1.domains.domains_pb2 import DomainType, VerificationStatus

APP_URL = os.environ.get("APP_URL", "http://localhost:3100")
REDIRECT_URI = APP_URL + "/auth/callback"
ENVIRONMENT_URL = os.environ["SCALEKIT_ENVIRONMENT_URL"]
CLIENT_ID = os.environ["SCALEKIT_CLIENT_ID"]
LOGIN_TTL = 600  # seconds a started SSO login may take
UNAVAILABLE = ("Single sign-on is unavailable right now: Scalekit cannot be reached. Sign in with your password, "
               "or try again in a few minutes.")


class SSOError(Exception):
    """A login the app refuses; the message is shown to the user with this HTTP status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


_client: ScalekitClient | None = None


def scalekit() -> ScalekitClient:
    """The Scalekit client, created on first use: its constructor signs in to Scalekit, so creating it
    at import would keep the whole app, password login included, from starting during an outage."""
    global _client
    if _client is None:
        try:
            _client = ScalekitClient(ENVIRONMENT_URL, CLIENT_ID, os.environ["SCALEKIT_CLIENT_SECRET"])
        except Exception:
            raise SSOError(UNAVAILABLE, 503) from None
    return _client


# region discovery
def has_sso(email: str) -> bool:
    """Home-realm discovery: does the email's domain belong to a customer with SSO?"""
    domain = email.rsplit("@", 1)[-1].strip().lower()
    try:
        response, _ = scalekit().connection.list_connections_by_domain(domain)
    except SSOError:
        raise
    except Exception:
        raise SSOError(UNAVAILABLE, 503) from None
    return any(connection.enabled for connection in response.connections)
# endregion discovery


# region start
def start_login(conn: sqlite3.Connection, *, email: str | None = None, organization_id: str | None = None,
                connection_id: str | None = None) -> tuple[str, str]:
    """(Scalekit authorization URL, state). Keep the state in a cookie to check it on the callback."""
    state = secrets.token_urlsafe(32)
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(32)
    conn.execute("INSERT INTO sso_logins (state, code_verifier, nonce, expires_at) VALUES (?, ?, ?, ?)",
                 (state, verifier, nonce, int(time.time()) + LOGIN_TTL))
    options = AuthorizationUrlOptions()
    options.state = state
    options.nonce = nonce
    if connection_id:
        options.connection_id = connection_id
    if organization_id:
        options.organization_id = organization_id
    if email:  # Scalekit picks the connection of the organization that verified this domain
        options.login_hint = email
        options.domain_hint = email.rsplit("@", 1)[-1]
    url = scalekit().get_authorization_url(REDIRECT_URI, options)
    # The Python SDK has no PKCE options: add the S256 challenge to the URL yourself.
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return url + "&" + urlencode({"code_challenge": challenge, "code_challenge_method": "S256"}), state
# endregion start


# region idp_initiated
def start_idp_initiated_login(conn: sqlite3.Connection, token: str) -> tuple[str, str]:
    """A login started at the IdP's portal: check Scalekit's token, then start a fresh SP-initiated
    login to the same connection. Its relay_state is not used as our state."""
    client = scalekit()
    try:
        claims = client.get_idp_initiated_login_claims(token, options=TokenValidationOptions(issuer=ENVIRONMENT_URL))
    except Exception:
        raise SSOError("This sign-in link from your identity provider is invalid or has expired.") from None
    return start_login(conn, connection_id=claims.get("connection_id"),
                       organization_id=claims.get("organization_id"), email=claims.get("login_hint"))
# endregion idp_initiated


# region callback
# The SDK's exceptions for a code exchange Scalekit refused (bad, expired or reused code); any other
# failure means Scalekit could not answer. (Branch on the class: its http_status reads 500 for a 400.)
REFUSED = (ScalekitBadRequestException, ScalekitUnauthorizedException, ScalekitForbiddenException,
           ScalekitNotFoundException)


def finish_login(*, code: str | None, state: str | None, cookie_state: str | None) -> int:
    """Check the callback, exchange the code and return the local user id to start a session for."""
    if not state or not cookie_state or not secrets.compare_digest(state, cookie_state):
        raise SSOError("This sign-in attempt is not the one your browser started. Please sign in again.")
    with db.transaction() as conn:
        pending = conn.execute("DELETE FROM sso_logins WHERE state = ? AND expires_at > ? "
                               "RETURNING code_verifier, nonce", (state, int(time.time()))).fetchone()
    if pending is None or not code:
        raise SSOError("This sign-in attempt has expired or was already used. Please sign in again.")
    options = CodeAuthenticationOptions()
    options.code_verifier = pending["code_verifier"]
    client = scalekit()
    try:
        result = client.authenticate_with_code(code, REDIRECT_URI, options)
    except REFUSED:  # a bad, expired or reused code
        raise SSOError("Your identity provider's answer could not be verified. Please sign in again.") from None
    except Exception:  # no answer, a timeout, 5xx or 429: Scalekit is down, not the user's fault
        raise SSOError(UNAVAILABLE, 503) from None
    try:
        # Check the ID token's issuer and audience too (the SDK checks only its signature).
        claims = client.validate_token(result["id_token"],
                                       options=TokenValidationOptions(issuer=ENVIRONMENT_URL, audience=[CLIENT_ID]))
    except Exception:
        raise SSOError("Your identity provider's answer could not be verified. Please sign in again.") from None
    # The ID token must answer this login: a code obtained for another login carries another nonce.
    if not secrets.compare_digest(str(claims.get("nonce", "")), pending["nonce"]):
        raise SSOError("Your identity provider's answer belongs to another sign-in. Please sign in again.")
    verified = verified_domains(claims["oid"])
    with db.transaction() as conn:
        return find_or_create_user(conn, connection_id=claims["amr"][0], subject=claims["sub"],
                                   organization_id=claims["oid"], email=claims.get("email", ""),
                                   name=claims.get("name", ""), verified=verified)
# endregion callback


# region link
def verified_domains(organization_id: str) -> set[str]:
    """The domains this organization proved it owns (DNS check in the admin portal)."""
    try:
        response, _ = scalekit().domain.list_domains(organization_id, domain_type="ORGANIZATION_DOMAIN")
    except SSOError:
        raise
    except Exception:
        raise SSOError(UNAVAILABLE, 503) from None
    return {d.domain.lower() for d in response.domains if d.domain_type == DomainType.ORGANIZATION_DOMAIN
            and d.verification_status in (VerificationStatus.VERIFIED, VerificationStatus.AUTO_VERIFIED)}


def find_or_create_user(conn: sqlite3.Connection, *, connection_id: str, subject: str, organization_id: str,
                        email: str, name: str, verified: set[str]) -> int:
    """Linking rules: an IdP account is known by (connection, subject), never by email alone. A new one
    may join or create an account by email only when the email's domain is a verified domain of the
    same organization, so one customer's IdP cannot claim another customer's users."""
    org = conn.execute("SELECT id FROM organizations WHERE scalekit_organization_id = ?", (organization_id,)).fetchone()
    if org is None:
        raise SSOError("Your organization has not set up single sign-on with this app.", 403)
    known = conn.execute("SELECT users.* FROM sso_identities JOIN users ON users.id = sso_identities.user_id"
                         " WHERE connection_id = ? AND subject = ?", (connection_id, subject)).fetchone()
    if known is not None:
        user = known
    else:
        email = email.strip().lower()
        if "@" not in email or email.rsplit("@", 1)[1] not in verified:
            raise SSOError("Your identity provider signed you in with an email outside your organization's "
                           "verified domains (profile_not_allowed_outside_organization).", 403)
        user = conn.execute("SELECT * FROM users WHERE email = ?", (email,)).fetchone()
        if user is None:  # just-in-time provisioning
            user_id = conn.execute("INSERT INTO users (organization_id, email, name) VALUES (?, ?, ?)",
                                   (org["id"], email, name or email)).lastrowid
            user = conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
        conn.execute("INSERT INTO sso_identities (connection_id, subject, user_id) VALUES (?, ?, ?)",
                     (connection_id, subject, user["id"]))
    if user["organization_id"] != org["id"]:
        raise SSOError("This account belongs to another organization.", 403)
    if not user["active"]:
        raise SSOError("This account has been deactivated by your organization.", 403)
    return user["id"]
# endregion link


# region admin
def portal_link(organization_id: str) -> str:
    """A fresh admin portal link: single use, valid for one minute, so redirect to it at once."""
    return scalekit().organization.generate_portal_link(organization_id).location


def domains(organization_id: str) -> list[dict]:
    response, _ = scalekit().domain.list_domains(organization_id)
    return [{"domain": d.domain, "status": VerificationStatus.Name(d.verification_status),
             "txt_name": d.txt_record_key, "txt_value": d.txt_record_secret} for d in response.domains]


def enable_sso(conn: sqlite3.Connection, org: sqlite3.Row) -> None:
    """Onboard a customer: its Scalekit organization, found or created by our slug as external id."""
    from scalekit.v1.organizations.organizations_pb2 import CreateOrganization

    try:
        found, _ = scalekit().organization.get_organization_by_external_id(org["slug"])
        organization_id = found.organization.id
    except Exception:
        created, _ = scalekit().organization.create_organization(
            CreateOrganization(display_name=org["name"], external_id=org["slug"]))
        organization_id = created.organization.id
    conn.execute("UPDATE organizations SET scalekit_organization_id = ? WHERE id = ?", (organization_id, org["id"]))


def add_domain(organization_id: str, domain: str) -> None:
    """Register a domain; the admin publishes its TXT record and Scalekit verifies it by DNS."""
    scalekit().domain.create_domain(organization_id, domain.strip().lower())
# endregion admin
