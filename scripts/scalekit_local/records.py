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
