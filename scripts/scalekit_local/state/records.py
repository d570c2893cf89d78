"""Every record the local environment keeps, as dataclasses, and the JSON shapes of those records that
events and webhooks carry. Shapes only: the Store (store.py) holds the records and changes them.

- configuration: clients, organizations, connections, social providers, roles, users and memberships;
- logins: pending login requests, authorization codes, sessions, refresh tokens;
- management objects: domains, directories, permissions, portal links, API keys, passkeys, consents,
  environment connections, environment and organization settings;
- the MCP authorization server: resources, their clients, pending authorization requests and codes;
- JSON shapes: organizations, users, memberships, logins and sign-ups as Scalekit's events carry them.

persistence.py saves the durable records as JSON documents of these fields, so a renamed or removed
field is a change of the state file's format.
"""
from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from ..ids import new_id, now, rfc3339

STANDARD_SCOPES = ("openid", "profile", "email", "offline_access")
MCP_PENDING_TTL = 600  # an MCP login, consent or custom-auth bridge request lives 10 minutes
PORTAL_LINK_TTL = 60  # a generated admin portal link: single use, 1 minute (guides/admin-portal.mdx)


# ---- configuration ---------------------------------------------------------------------------------
@dataclass
class Client:
    id: str
    secret: str
    type: str  # "environment" | "m2m"
    name: str = ""
    redirect_uris: list[str] = field(default_factory=list)
    post_logout_redirect_uris: list[str] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)
    audience: list[str] = field(default_factory=list)
    organization_id: str | None = None
    custom_claims: dict[str, str] = field(default_factory=dict)
    description: str = ""
    expiry: int = 0  # seconds a client_credentials token of this client lives (0: the environment's TTL)
    # Secrets added over the management API: [{"id", "secret", "created_at"}] (services/clients.py).
    secrets: list[dict[str, Any]] = field(default_factory=list)
    created_at: float = field(default_factory=now)

    def secret_matches(self, candidate: str) -> bool:
        candidates = [self.secret] + [s["secret"] for s in self.secrets]
        return any(c and hmac.compare_digest(c.encode(), candidate.encode()) for c in candidates)


@dataclass
class Organization:
    id: str
    display_name: str
    external_id: str | None = None
    slug: str | None = None
    region_code: str = "US"
    metadata: dict[str, str] = field(default_factory=dict)
    logo_url: str | None = None
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)


@dataclass
class Connection:
    id: str
    organization_id: str
    type: str  # SAML | OIDC
    provider: str = "CUSTOM"
    domains: list[str] = field(default_factory=list)
    enabled: bool = True


@dataclass
class Provider:
    provider: str  # google, github, ...
    connection_id: str
    enabled: bool = True


@dataclass
class Role:
    name: str
    display_name: str = ""
    description: str = ""
    permissions: list[str] = field(default_factory=list)
    extends: str | None = None           # a role whose permissions this one inherits
    organization_id: str | None = None   # set for organization-specific roles (store.org_roles)
    created_at: float = field(default_factory=now)


@dataclass
class Membership:
    organization_id: str
    roles: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    created_at: float = field(default_factory=now)
    status: str = "ACTIVE"             # | PENDING_INVITE (invited by email, until the user signs in)
    invite_expires_at: float | None = None
    resent_at: float | None = None
    resent_count: int = 0
    accepted_at: float | None = None


@dataclass
class User:
    id: str
    email: str
    password: str | None = None
    given_name: str = ""
    family_name: str = ""
    name: str = ""
    email_verified: bool = True
    external_id: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    memberships: list[Membership] = field(default_factory=list)
    # Other profile fields the management API stores and returns (locale, phone_number, picture, ...).
    profile: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)

    @property
    def display_name(self) -> str:
        return self.name or " ".join(p for p in (self.given_name, self.family_name) if p) or self.email

    def password_matches(self, candidate: str) -> bool:
        return self.password is not None and hmac.compare_digest(self.password.encode(), candidate.encode())

    def membership(self, organization_id: str | None) -> Membership | None:
        return next((m for m in self.memberships if m.organization_id == organization_id), None)


# ---- logins ----------------------------------------------------------------------------------------
@dataclass
class AuthRequest:
    """A validated /oauth/authorize request waiting for the user to log in on a page."""
    id: str
    client_id: str
    redirect_uri: str
    scopes: list[str]
    state: str | None
    nonce: str | None
    code_challenge: str | None
    prompt: str | None
    login_hint: str | None
    organization_id: str | None
    expires_at: float


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    user_id: str
    organization_id: str | None
    session_id: str
    connection_id: str
    scopes: list[str]
    nonce: str | None
    code_challenge: str | None
    expires_at: float
    used: bool = False
    family_id: str | None = None  # refresh-token family created by the exchange, revoked on replay
    access_jti: str | None = None   # the access token the exchange issued, revoked on replay
    access_exp: float | None = None


@dataclass
class Session:
    id: str
    user_id: str
    organization_id: str | None
    connection_id: str
    created_at: float = field(default_factory=now)
    active: bool = True
    ended_at: float | None = None
    client_ids: list[str] = field(default_factory=list)  # clients that got a code in this session


@dataclass
class RefreshToken:
    token: str
    family_id: str
    client_id: str
    user_id: str
    organization_id: str | None
    session_id: str
    connection_id: str
    scopes: list[str]
    rotated: bool = False


# ---- management objects (the gRPC management API, the admin portal) --------------------------------
@dataclass
class Domain:
    id: str
    domain: str
    organization_id: str
    domain_type: str = "ORGANIZATION_DOMAIN"   # | ALLOWED_EMAIL_DOMAIN
    verification_status: str = "PENDING"       # | VERIFIED
    txt_record_key: str = ""
    txt_record_secret: str = ""
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)


@dataclass
class DirectoryGroup:
    id: str
    display_name: str
    updated_at: float = field(default_factory=now)


@dataclass
class DirectoryUser:
    id: str
    email: str
    given_name: str = ""
    family_name: str = ""
    preferred_username: str = ""
    groups: list[str] = field(default_factory=list)  # DirectoryGroup ids
    updated_at: float = field(default_factory=now)


@dataclass
class Directory:
    id: str
    organization_id: str
    name: str = "Directory"
    provider: str = "OKTA"
    directory_type: str = "SCIM"
    enabled: bool = True
    users: list[DirectoryUser] = field(default_factory=list)
    groups: list[DirectoryGroup] = field(default_factory=list)
    created_at: float = field(default_factory=now)


@dataclass
class Permission:
    name: str
    description: str = ""
    id: str = field(default_factory=lambda: new_id("perm"))
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)


@dataclass
class PortalLink:
    id: str
    organization_id: str
    expires_at: float
    features: list[str] = field(default_factory=list)
    created_at: float = field(default_factory=now)
    used_at: float | None = None  # links are single use


@dataclass
class ApiToken:
    """An opaque API key (ApiTokenService). Only a digest of the key is kept, as Scalekit keeps none."""
    id: str                          # apit_...
    digest: str                      # sha256 of the key, hex
    suffix: str                      # the key's last characters, shown in lists
    organization_id: str
    user_id: str | None = None
    custom_claims: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    expires_at: float | None = None
    invalidated: bool = False
    created_at: float = field(default_factory=now)


@dataclass
class Passkey:
    """A user's WebAuthn credential (WebAuthnService: list, rename, delete)."""
    id: str
    user_id: str
    display_name: str | None = None
    authenticator: str = "Local passkey"
    transports: list[str] = field(default_factory=lambda: ["internal"])
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)


@dataclass
class Consent:
    """A user's consent to an MCP client for a resource (given on the consent page)."""
    id: str                          # usrcnst_...
    client_id: str
    resource_id: str
    user_id: str
    scopes: list[str] = field(default_factory=list)
    granted_at: float = field(default_factory=now)


@dataclass
class EnvConnection:
    """An environment-level connection (ConnectionService *EnvironmentConnection, ListAppConnections)."""
    id: str
    type: str = "OAUTH"               # ConnectionType name
    provider: str = "CUSTOM"          # ConnectionProvider name
    provider_key: str = ""            # e.g. hubspot, google
    key_id: str = ""                  # the connection's name
    is_login: bool = False
    is_app: bool = True
    enabled: bool = True
    ui_button_title: str = ""
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)


@dataclass
class EnvSettings:
    """Environment-wide settings: default roles (RolesService.UpdateDefaultRoles) and passwordless."""
    default_creator_role: str | None = None
    default_member_role: str | None = None
    org_default_member_roles: dict[str, str] = field(default_factory=dict)  # organization id -> role
    passwordless_type: str = "LINK_OTP"          # OTP | LINK | LINK_OTP
    passwordless_expires_in: int = 300
    enforce_same_browser_origin: bool = False
    regenerate_on_resend: bool = False


@dataclass
class OrgSettings:
    """Per-organization settings: features (UpdateOrganizationSettings), user management, session policy."""
    organization_id: str
    features: dict[str, bool] = field(default_factory=dict)
    max_allowed_users: int | None = None
    session_policy: dict[str, Any] = field(default_factory=lambda: {"policy_source": "APPLICATION"})


@dataclass
class PasswordlessRequest:
    """A passwordless email sent and not yet verified (PasswordlessService; runtime, not saved)."""
    id: str
    email: str
    kind: str                        # OTP | LINK | LINK_OTP
    expires_in: int
    expires_at: float
    template: int = 0
    state: str | None = None
    magiclink_auth_uri: str | None = None
    code: str | None = None
    link_token: str | None = None
    failures: list[float] = field(default_factory=list)
    verified: bool = False
    created_at: float = field(default_factory=now)


# ---- MCP authorization server (endpoints/mcp_as.py, the custom-auth bridge, ClientService) ----------
@dataclass
class Resource:
    id: str
    name: str
    urls: list[str]
    scopes: list[str]
    dcr: bool = True
    cimd: bool = True
    token_issuer: str = "environment"  # environment | resource
    login_url: str | None = None       # custom auth (endpoints/bridge.py)
    connection_id: str | None = None
    state_ttl: int = MCP_PENDING_TTL   # custom auth: how long login_request_id and state stay valid

    def allowed_scopes(self) -> set[str]:
        return set(self.scopes) | set(STANDARD_SCOPES)


@dataclass
class McpClient:
    id: str
    resource_id: str | None          # None: a CIMD client (usable with any resource that allows CIMD)
    redirect_uris: list[str]
    name: str = ""
    auth_method: str = "none"
    secret: str | None = None
    metadata: dict = field(default_factory=dict)
    fetched_at: float = 0.0
    # Clients created over the management API or the seed (services/resource_clients.py): several
    # secrets [{"id", "secret", "created_at"}] and their own settings.
    secrets: list[dict] = field(default_factory=list)
    description: str = ""
    scopes: list[str] = field(default_factory=list)
    custom_claims: dict[str, str] = field(default_factory=dict)
    expiry: int = 0
    created_at: float = field(default_factory=now)

    def has_secret(self) -> bool:
        return self.secret is not None or bool(self.secrets)

    def secret_matches(self, candidate: str | None) -> bool:
        known = ([self.secret] if self.secret is not None else []) + [s["secret"] for s in self.secrets]
        return bool(candidate) and any(hmac.compare_digest(k.encode(), candidate.encode()) for k in known)


@dataclass
class Pending:
    """An authorization request waiting for a login, the bridge or consent."""
    id: str
    client_id: str
    resource_id: str
    resource_url: str
    redirect_uri: str
    scopes: list[str]
    state: str | None
    code_challenge: str
    base: str                        # the environment URL the client used
    expires_at: float
    user_id: str | None = None
    organization_id: str | None = None
    connection_id: str | None = None
    session_id: str | None = None
    consent_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    login_request_id: str | None = None
    bridge_state: str | None = None
    bridge_state_used: bool = False


@dataclass
class McpCode:
    code: str
    client_id: str
    resource_id: str
    resource_url: str
    redirect_uri: str
    user_id: str
    organization_id: str | None
    session_id: str
    connection_id: str
    scopes: list[str]
    code_challenge: str
    expires_at: float
    used: bool = False
    family_id: str | None = None
    access_jti: str | None = None   # revoked when the code is replayed
    access_exp: float | None = None


# ---- JSON shapes: the records as Scalekit's events carry them (cross/webhooks.py sends them) -------
def organization_json(org: Organization) -> dict[str, Any]:
    return {
        "id": org.id, "display_name": org.display_name, "external_id": org.external_id,
        "region_code": org.region_code, "metadata": dict(org.metadata) or None,
        "create_time": rfc3339(org.created_at), "update_time": rfc3339(org.updated_at),
        "settings": {"features": [{"name": "sso", "enabled": True}, {"name": "dir_sync", "enabled": False}]},
    }


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id, "email": user.email, "external_id": user.external_id or "",
        "metadata": dict(user.metadata),
        "create_time": rfc3339(user.created_at),
        "update_time": rfc3339(user.updated_at or user.created_at),
        "user_profile": {
            "email_verified": user.email_verified, "given_name": user.given_name, "family_name": user.family_name,
            "name": user.display_name,
        },
        "memberships": [{"organization_id": m.organization_id, "roles": [{"name": r} for r in m.roles]}
                        for m in user.memberships],
    }


def membership_data(user: User, organization_id: str, roles: list[str] | None = None,
                    provisioning_method: str = "jit") -> dict[str, Any]:
    membership = user.membership(organization_id)
    roles = list(roles if roles is not None else (membership.roles if membership else []))
    return {
        "organization": {"id": organization_id},
        "user": {"id": user.id, "email": user.email, "membership": {
            "organization_id": organization_id, "membership_status": "ACTIVE",
            "provisioning_method": provisioning_method, "roles": [{"name": r} for r in roles],
            "created_at": rfc3339(), "accepted_at": rfc3339(),
        }},
    }


def login_data(user: User, session: Session) -> dict[str, Any]:
    """UserAuthEventData (openapi/scalekit.yaml): {user, user_session}. Session fields the local
    environment has no value for (expiry policy, device) are left out."""
    login_time = rfc3339(session.created_at)
    account = {k: v for k, v in user_json(user).items() if k != "memberships"}
    account["last_login_time"] = login_time
    orgs = [session.organization_id] if session.organization_id else []
    return {
        "user": account,
        "user_session": {
            "session_id": session.id, "user_id": user.id, "organization_id": session.organization_id,
            "status": "ACTIVE" if session.active else "LOGGED_OUT", "created_at": login_time, "updated_at": login_time,
            "last_active_at": login_time, "expired_at": None, "logout_at": None,
            "authenticated_organizations": orgs,
        },
    }


def signup_data(user: User, org: Organization) -> dict[str, Any]:
    return {"organization": organization_json(org), "user": user_json(user)}
