"""Management objects that only the gRPC management API and the admin portal use.

They hang off the Store (store.domains, store.directories, ...) and share its lock, so a change made
over gRPC is what the HTTP side sees and what persistence.py saves. Seeded from the seed file:
domains from each connection's `domains` (verified), permissions from the roles' permission lists,
directories (with users and groups) from `directories`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .store import new_id, now

PORTAL_LINK_TTL = 60  # a generated admin portal link: single use, 1 minute (guides/admin-portal.mdx)


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


def seed_records(store, seed: dict[str, Any]) -> None:
    store.domains: dict[str, Domain] = {}
    for conn in seed.get("connections", []):
        for name in conn.get("domains", []):
            dom = Domain(id=new_id("dom"), domain=name.lower(), organization_id=conn["organization_id"],
                         verification_status="VERIFIED")
            store.domains[dom.id] = dom
    store.permissions: dict[str, Permission] = {}
    for role in seed.get("roles", []):
        for name in role.get("permissions", []):
            store.permissions.setdefault(name, Permission(name))
    store.directories: dict[str, Directory] = {}
    for d in seed.get("directories", []):
        store.directories[d["id"]] = Directory(
            id=d["id"], organization_id=d["organization_id"], name=d.get("name", "Directory"),
            provider=d.get("provider", "OKTA"), enabled=d.get("enabled", True),
            groups=[DirectoryGroup(g["id"], g["display_name"]) for g in d.get("groups", [])],
            users=[DirectoryUser(u["id"], u["email"].lower(), u.get("given_name", ""), u.get("family_name", ""),
                                 u.get("preferred_username", u["email"].split("@", 1)[0]), list(u.get("groups", [])))
                   for u in d.get("users", [])],
        )
    store.org_roles: dict[str, dict[str, Any]] = {}  # organization id -> role name -> store.Role
    store.portal_links: dict[str, PortalLink] = {}
    store.org_settings: dict[str, OrgSettings] = {}
    seed_environment_records(store, seed)


def seed_environment_records(store, seed: dict[str, Any]) -> None:
    """API keys, passkeys, environment connections and environment settings from the seed."""
    import hashlib

    env = seed.get("environment", {})
    roles = {r["name"] for r in seed.get("roles", [])}
    defaults = env.get("default_roles", {})
    passwordless = env.get("passwordless", {})
    store.env_settings: dict[str, EnvSettings] = {"environment": EnvSettings(
        default_creator_role=defaults.get("creator", "admin" if "admin" in roles else None),
        default_member_role=defaults.get("member", "member" if "member" in roles else None),
        passwordless_type=passwordless.get("type", "LINK_OTP"),
        passwordless_expires_in=int(passwordless.get("expires_in", 300)),
        enforce_same_browser_origin=bool(passwordless.get("enforce_same_browser_origin", False)),
        regenerate_on_resend=bool(passwordless.get("regenerate_on_resend", False)),
    )}
    store.api_tokens: dict[str, ApiToken] = {}
    for t in seed.get("api_tokens", []):
        token = ApiToken(id=t.get("id") or new_id("apit"), digest=hashlib.sha256(t["token"].encode()).hexdigest(),
                         suffix=t["token"][-4:], organization_id=t["organization_id"], user_id=t.get("user_id"),
                         custom_claims=dict(t.get("custom_claims", {})), description=t.get("description"))
        store.api_tokens[token.id] = token
    store.passkeys: dict[str, Passkey] = {}
    for u in seed.get("users", []):
        for p in u.get("passkeys", []):
            store.passkeys[p["id"]] = Passkey(id=p["id"], user_id=u["id"], display_name=p.get("display_name"))
    store.env_connections: dict[str, EnvConnection] = {}
    for c in env.get("app_connections", []):
        store.env_connections[c["id"]] = EnvConnection(
            id=c["id"], provider_key=c["provider_key"], key_id=c.get("key_id", c["provider_key"]), is_app=True,
            ui_button_title=c.get("display_name", c["provider_key"].title()))
    store.consents: dict[str, Consent] = {}
    store.passwordless_requests: dict[str, Any] = {}  # runtime: services/passwordless.py (not saved)


def env_settings(store) -> EnvSettings:
    return store.env_settings["environment"]


def org_settings(store, org_id: str) -> OrgSettings:
    with store.lock:
        if org_id not in store.org_settings:
            store.org_settings[org_id] = OrgSettings(org_id)
        return store.org_settings[org_id]


def sync_connection_domains(store, org_id: str) -> None:
    """SSO routing by email domain follows the organization's verified organization domains."""
    with store.lock:
        names = sorted({d.domain for d in store.domains.values() if d.organization_id == org_id
                        and d.domain_type == "ORGANIZATION_DOMAIN" and d.verification_status == "VERIFIED"})
        for conn in store.connections.values():
            if conn.organization_id == org_id:
                conn.domains = list(names)


def record_consent(store, client_id: str, resource_id: str, user_id: str | None, scopes: list[str]) -> None:
    """A user approved an MCP client for a resource (mcp_as.py): one consent per client, resource and user."""
    if not user_id:
        return
    with store.lock:
        consent = next((c for c in store.consents.values() if c.client_id == client_id
                        and c.resource_id == resource_id and c.user_id == user_id), None)
        if consent is not None and set(scopes) <= set(consent.scopes):
            return
        if consent is None:
            consent = Consent(id=new_id("usrcnst"), client_id=client_id, resource_id=resource_id, user_id=user_id)
            store.consents[consent.id] = consent
        consent.scopes = sorted(set(consent.scopes) | set(scopes))
        consent.granted_at = now()
        store.management_changed()
