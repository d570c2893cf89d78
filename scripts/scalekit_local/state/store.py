"""The one state store shared by the HTTP endpoints and the gRPC services.

Seeded objects (clients, organizations, connections, users, roles and the management objects) and
runtime objects (pending login requests, authorization codes, sessions, refresh-token families,
revoked token ids, request counters) live here, in memory, behind one lock: HTTP handlers run on the
event loop thread and gRPC handlers on grpcio's worker threads. Every attribute is declared in
Store.__init__; the shapes of the records are in records.py. Runtime state is indexed and pruned as
it expires, and changes are journaled for persistence.py (--persist), so a login costs the same
however much state has grown.
"""
from __future__ import annotations

import hashlib
import secrets
import threading
from collections import Counter, deque
from typing import Any

from ..ids import new_id, now
from ..keys.token_claims import TokenClaim, resolve
from ..keys.token_claims import make as make_claim
from .mcp import McpState
from .records import (ApiToken, AuthCode, AuthRequest, Client, Connection, Consent, Directory, DirectoryGroup,
                      DirectoryUser, Domain, EnvConnection, EnvSettings, Membership, Organization, OrgSettings, Passkey,
                      PasswordlessRequest, Permission, PortalLink, Provider, RefreshToken, Role, Session, User)

SOCIAL_PROVIDERS = ("google", "github", "microsoft", "gitlab", "linkedin", "salesforce")
CODE_REPLAY_WINDOW = 600               # a used or expired code is remembered this long, to catch replays
ENDED_SESSION_RETENTION = 3600         # an ended session stays visible (GetSession: REVOKED) this long
SESSION_MAX_AGE = 7 * 24 * 3600        # the absolute session lifetime SessionService reports
REVOKED_JTI_TTL = 24 * 3600            # a revoked token id whose expiry is unknown is kept this long


class Store:
    """Seeded and runtime state. Every public method takes the lock."""

    def __init__(self, seed: dict[str, Any]):
        self.lock = threading.RLock()
        self.stats: Counter[str] = Counter()
        env = seed.get("environment", {})
        # ---- the environment ---------------------------------------------------------------
        self.environment_name: str = env.get("name", "local")
        self.password_connection_id: str = env.get("password_connection_id") or "conn_70000000000000101"
        self.providers: dict[str, Provider] = {
            p["provider"]: Provider(p["provider"], p["connection_id"], p.get("enabled", True))
            for p in env.get("providers", [])
        }
        self.token_claims: list[TokenClaim] = [make_claim(c["key"], c["expression"]) for c in env.get("token_claims", [])]
        self.env_settings: dict[str, EnvSettings] = {"environment": _env_settings(seed)}  # one entry: "environment"
        self.env_connections: dict[str, EnvConnection] = _env_connections(env)
        # --hostile-idp: connections whose identity-provider page accepts any email (endpoints/login.py)
        self.hostile_idp_connections: set[str] = set()
        # --modular-sso: an environment without full-stack auth; ID tokens of SSO logins carry the
        # connection's subject (endpoints/oidc.py id_token_subject), not a Scalekit user id
        self.modular_sso = False
        # ---- seeded objects and what the management API adds (persistence.py saves them) ----
        self.clients: dict[str, Client] = _clients(seed)
        self.organizations: dict[str, Organization] = _organizations(seed)
        self.org_settings: dict[str, OrgSettings] = {}           # organization id -> settings
        self.portal_links: dict[str, PortalLink] = {}
        self.connections: dict[str, Connection] = _connections(seed)
        self.domains: dict[str, Domain] = _domains(seed)
        self.directories: dict[str, Directory] = _directories(seed)
        # SCIM-only attributes of directory users and groups (active, external ids, roles), by their id:
        # domain/directory_sync.py (not saved)
        self.directory_extra: dict[str, dict[str, Any]] = {}
        self.roles: dict[str, Role] = _roles(seed)
        self.org_roles: dict[str, dict[str, Role]] = {}          # organization id -> role name -> role
        self.permissions: dict[str, Permission] = _permissions(seed)
        self.users: dict[str, User] = _users(seed)
        self.passkeys: dict[str, Passkey] = _passkeys(seed)
        self.api_tokens: dict[str, ApiToken] = _api_tokens(seed)
        self.consents: dict[str, Consent] = {}                   # MCP consents (consent page)
        # ---- the MCP authorization server: resources, their clients, its logins (own lock) ----
        self.mcp: McpState = McpState(seed.get("resources", []))
        # ---- runtime state -------------------------------------------------------------------
        # Every change goes through the methods below, which keep the indexes, the expiry queues
        # (oldest first, so pruning never scans) and the persistence journal current.
        self.auth_requests: dict[str, AuthRequest] = {}
        self.codes: dict[str, AuthCode] = {}
        self.sessions: dict[str, Session] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.revoked_families: set[str] = set()
        self.revoked_jtis: set[str] = set()
        self.passwordless_requests: dict[str, PasswordlessRequest] = {}  # services/passwordless.py (not saved)
        self._user_sessions: dict[str, set[str]] = {}          # user id -> session ids
        self._session_tokens: dict[str, list[str]] = {}        # session id -> refresh tokens
        self._request_queue: deque[tuple[float, str]] = deque()  # (expires_at, request id)
        self._code_queue: deque[tuple[float, str]] = deque()     # (expires_at, code)
        self._ended_queue: deque[tuple[float, str]] = deque()    # (ended_at, session id)
        self._session_queue: deque[tuple[float, str]] = deque()  # (created_at, session id)
        self._jti_queue: deque[tuple[float, str]] = deque()      # (token expiry, revoked jti)
        self.journal: set[tuple[str, str]] = set()  # (kind, id) changed since the last save (persistence.py)
        self.management_dirty = True  # management objects may have changed since the last save

    # ---- seeded objects -------------------------------------------------------------------
    @property
    def default_client(self) -> Client:
        return next(c for c in self.clients.values() if c.type == "environment")

    def client(self, client_id: str | None) -> Client | None:
        return self.clients.get(client_id or "")

    def user_by_email(self, email: str) -> User | None:
        email = email.strip().lower()
        with self.lock:
            return next((u for u in self.users.values() if u.email == email), None)

    def organization(self, org_id: str | None) -> Organization | None:
        return self.organizations.get(org_id or "")

    def organization_by_external_id(self, external_id: str) -> Organization | None:
        with self.lock:
            return next((o for o in self.organizations.values() if o.external_id == external_id), None)

    def list_organizations(self) -> list[Organization]:
        with self.lock:
            return sorted(self.organizations.values(), key=lambda o: (-o.created_at, o.id))  # newest first

    def connection(self, conn_id: str | None) -> Connection | None:
        return self.connections.get(conn_id or "")

    def connection_for_domain(self, domain: str) -> Connection | None:
        domain = domain.strip().lower()
        with self.lock:
            return next((c for c in self.connections.values() if c.enabled and domain in c.domains), None)

    def connection_for_organization(self, org_id: str) -> Connection | None:
        with self.lock:
            return next((c for c in self.connections.values() if c.enabled and c.organization_id == org_id), None)

    def enabled_providers(self) -> list[Provider]:
        return [self.providers[name] for name in SOCIAL_PROVIDERS if name in self.providers and self.providers[name].enabled]

    def roles_and_permissions(self, user: User, org_id: str | None) -> tuple[list[str], list[str]]:
        membership = user.membership(org_id)
        if membership is None:
            return [], []
        permissions: list[str] = []
        for role_name in membership.roles:
            for perm in self.effective_permissions(role_name, org_id):
                if perm not in permissions:
                    permissions.append(perm)
        return list(membership.roles), permissions

    def user_claims(self, user: User, org_id: str | None) -> tuple[list[str], list[str], dict[str, Any]]:
        """What a user's access token says besides who and when: roles, permissions, custom claims."""
        roles, permissions = self.roles_and_permissions(user, org_id)
        custom = resolve(self.token_claims, user, self.organization(org_id), user.membership(org_id)) \
            if self.token_claims else {}
        return roles, permissions, custom

    def find_role(self, name: str, org_id: str | None = None) -> Role | None:
        """An organization role of org_id, else an environment role."""
        with self.lock:
            return self.org_roles.get(org_id or "", {}).get(name) or self.roles.get(name)

    def effective_permissions(self, role_name: str, org_id: str | None = None) -> list[str]:
        """The role's permissions plus those of the roles it extends."""
        out: list[str] = []
        seen: set[str] = set()
        with self.lock:
            role = self.find_role(role_name, org_id)
            while role is not None and role.name not in seen:
                seen.add(role.name)
                out += [p for p in role.permissions if p not in out]
                role = self.find_role(role.extends, org_id) if role.extends else None
        return out

    def environment_settings(self) -> EnvSettings:
        return self.env_settings["environment"]

    def organization_settings(self, org_id: str) -> OrgSettings:
        """The organization's settings (created with the defaults on first use)."""
        with self.lock:
            if org_id not in self.org_settings:
                self.org_settings[org_id] = OrgSettings(org_id)
            return self.org_settings[org_id]

    def default_roles(self, org_id: str | None, which: str) -> list[str]:
        """The default creator or member role (RolesService defaults, seed environment.default_roles)."""
        settings = self.environment_settings()
        name = settings.default_creator_role if which == "creator" else \
            settings.org_default_member_roles.get(org_id or "", settings.default_member_role)
        return [name] if name and self.find_role(name, org_id) else []

    def accept_invitation(self, user: User, org_id: str | None) -> None:
        """Signing in to an organization accepts a pending, unexpired invitation to it."""
        with self.lock:
            m = user.membership(org_id)
            if m is not None and m.status == "PENDING_INVITE" and (m.invite_expires_at or 0) >= now():
                m.status, m.accepted_at = "ACTIVE", now()
                user.email_verified = True
                self.management_changed()

    def record_consent(self, client_id: str, resource_id: str, user_id: str | None, scopes: list[str]) -> None:
        """A user approved an MCP client for a resource (endpoints/mcp_as.py): one consent per client, resource and user."""
        if not user_id:
            return
        with self.lock:
            consent = next((c for c in self.consents.values() if c.client_id == client_id
                            and c.resource_id == resource_id and c.user_id == user_id), None)
            if consent is not None and set(scopes) <= set(consent.scopes):
                return
            if consent is None:
                consent = Consent(id=new_id("usrcnst"), client_id=client_id, resource_id=resource_id, user_id=user_id)
                self.consents[consent.id] = consent
            consent.scopes = sorted(set(consent.scopes) | set(scopes))
            consent.granted_at = now()
            self.management_changed()

    # ---- login requests, codes, sessions --------------------------------------------------
    def add_auth_request(self, req: AuthRequest) -> None:
        with self.lock:
            self._prune()
            self.auth_requests[req.id] = req
            self._request_queue.append((req.expires_at, req.id))

    def auth_request(self, req_id: str) -> AuthRequest | None:
        with self.lock:
            req = self.auth_requests.get(req_id or "")
            if req is None or req.expires_at < now():
                return None
            return req

    def finish_auth_request(self, req_id: str) -> None:
        with self.lock:
            self.auth_requests.pop(req_id, None)

    def create_session(self, user_id: str, org_id: str | None, connection_id: str) -> Session:
        with self.lock:
            self._prune()
            session = Session(new_id("ses"), user_id, org_id, connection_id)
            self._add_session(session)
            return session

    def _add_session(self, session: Session) -> None:
        self.sessions[session.id] = session
        self._user_sessions.setdefault(session.user_id, set()).add(session.id)
        self._session_queue.append((session.created_at, session.id))
        if not session.active:
            self._ended_queue.append((session.ended_at or session.created_at, session.id))
        self.journal.add(("session", session.id))

    def active_session(self, session_id: str | None) -> Session | None:
        with self.lock:
            session = self.sessions.get(session_id or "")
            return session if session and session.active else None

    def sessions_of(self, user_id: str) -> list[Session]:
        """The user's sessions, newest first (from the index: no scan of all sessions)."""
        with self.lock:
            found = [self.sessions[s] for s in self._user_sessions.get(user_id, ()) if s in self.sessions]
            return sorted(found, key=lambda s: (-s.created_at, s.id))

    def session_clients(self, session_id: str) -> list[str]:
        """Client ids that received tokens or codes in a session."""
        with self.lock:
            session = self.sessions.get(session_id)
            ids = set(session.client_ids) if session else set()
            ids |= {self.refresh_tokens[t].client_id for t in self._session_tokens.get(session_id, ())
                    if t in self.refresh_tokens}
            return sorted(ids)

    def end_session(self, session_id: str) -> bool:
        """Ends a session and revokes the refresh tokens issued in it."""
        with self.lock:
            session = self.sessions.get(session_id)
            if session is None or not session.active:
                return False
            session.active = False
            session.ended_at = now()
            self._ended_queue.append((session.ended_at, session.id))
            self.journal.add(("session", session.id))
            for token in self._session_tokens.get(session_id, ()):
                rt = self.refresh_tokens.get(token)
                if rt is not None and rt.family_id not in self.revoked_families:
                    self.revoke_family(rt.family_id)
            return True

    def add_code(self, code: AuthCode) -> None:
        with self.lock:
            self._prune()
            self.codes[code.code] = code
            self._code_queue.append((code.expires_at, code.code))
            session = self.sessions.get(code.session_id)
            if session is not None and code.client_id not in session.client_ids:
                session.client_ids.append(code.client_id)
                self.journal.add(("session", session.id))

    def take_code(self, code: str) -> tuple[AuthCode | None, str]:
        """Marks a code used. Returns (code, "") or (code-or-None, reason) when it cannot be used."""
        with self.lock:
            entry = self.codes.get(code)
            if entry is None:
                return None, "unknown"
            if entry.used:
                # Replay: whatever the first exchange produced is revoked (RFC 6749 section 4.1.2).
                self.revoke_grant(entry.family_id, entry.access_jti, entry.access_exp)
                return entry, "used"
            entry.used = True
            if entry.expires_at < now():
                return entry, "expired"
            return entry, ""

    def revoke_grant(self, family_id: str | None, access_jti: str | None, access_exp: float | None = None) -> None:
        """Revoke what one code exchange issued: its refresh-token family and its access token."""
        with self.lock:
            if family_id:
                self.revoke_family(family_id)
            if access_jti:
                self.revoke_jti(access_jti, access_exp)

    # ---- refresh tokens -------------------------------------------------------------------
    def issue_refresh_token(self, family_id: str, client_id: str, user_id: str, org_id: str | None,
                            session_id: str, connection_id: str, scopes: list[str]) -> str:
        with self.lock:
            token = "rt_" + secrets.token_urlsafe(32)
            self._add_refresh_token(RefreshToken(token, family_id, client_id, user_id, org_id, session_id,
                                                 connection_id, list(scopes)))
            return token

    def _add_refresh_token(self, rt: RefreshToken) -> None:
        self.refresh_tokens[rt.token] = rt
        self._session_tokens.setdefault(rt.session_id, []).append(rt.token)
        self.journal.add(("refresh_token", rt.token))

    def use_refresh_token(self, token: str, client_id: str) -> tuple[RefreshToken | None, str]:
        """Rotates a refresh token. Reusing a rotated one revokes its whole family."""
        with self.lock:
            rt = self.refresh_tokens.get(token)
            if rt is None:
                return None, "unknown refresh token"
            if rt.client_id != client_id:
                return None, "refresh token was issued to another client"
            if rt.family_id in self.revoked_families:
                return None, "refresh token was revoked"
            if rt.rotated:
                self.revoke_family(rt.family_id)
                self.stats["refresh_reuse_detected"] += 1
                return None, "refresh token was already used; its token family is now revoked"
            if self.active_session(rt.session_id) is None:
                return None, "the session of this refresh token has ended"
            rt.rotated = True
            self.journal.add(("refresh_token", rt.token))
            return rt, ""

    def revoke_client_refresh_tokens(self, user_id: str, client_id: str) -> None:
        """Revoke every refresh token the client holds for the user (a revoked consent)."""
        with self.lock:
            for session_id in self._user_sessions.get(user_id, ()):
                for token in self._session_tokens.get(session_id, ()):
                    rt = self.refresh_tokens.get(token)
                    if rt is not None and rt.client_id == client_id and rt.family_id not in self.revoked_families:
                        self.revoke_family(rt.family_id)

    def revoke_family(self, family_id: str) -> None:
        with self.lock:
            self.revoked_families.add(family_id)
            self.journal.add(("revoked_family", family_id))

    def revoke_jti(self, jti: str, expires_at: float | None = None) -> None:
        """Refuse this access token from now on; forgotten once it would have expired anyway."""
        with self.lock:
            self.revoked_jtis.add(jti)
            self._jti_queue.append((expires_at or now() + REVOKED_JTI_TTL, jti))
            self.journal.add(("revoked_jti", jti))

    def is_revoked(self, jti: str | None) -> bool:
        return bool(jti) and jti in self.revoked_jtis

    def management_changed(self) -> None:
        self.management_dirty = True

    def count(self, name: str) -> None:
        with self.lock:
            self.stats[name] += 1

    def snapshot_stats(self) -> dict[str, int]:
        with self.lock:
            return dict(self.stats)

    # ---- pruning --------------------------------------------------------------------------
    def rebuild_indexes(self) -> None:
        """Indexes and queues from the objects (after persistence.py restored them)."""
        with self.lock:
            sessions, tokens, jtis = list(self.sessions.values()), list(self.refresh_tokens.values()), set(self.revoked_jtis)
            self.sessions, self.refresh_tokens = {}, {}
            self._user_sessions, self._session_tokens = {}, {}
            self._ended_queue, self._session_queue, self._jti_queue = deque(), deque(), deque()
            for session in sorted(sessions, key=lambda s: s.created_at):
                self._add_session(session)
            self._ended_queue = deque(sorted(self._ended_queue))
            for rt in tokens:
                self._add_refresh_token(rt)
            for jti in sorted(jtis):
                self._jti_queue.append((now() + REVOKED_JTI_TTL, jti))
            self.journal.clear()

    def _prune(self) -> None:
        """Drop what can no longer be used, oldest first: amortised O(1) per call, never a full scan."""
        t = now()
        while self._request_queue and self._request_queue[0][0] < t:
            _, req_id = self._request_queue.popleft()
            req = self.auth_requests.get(req_id)
            if req is not None and req.expires_at < t:
                del self.auth_requests[req_id]
        # Used and expired codes stay a while so that a replay is still recognised (and revokes).
        while self._code_queue and self._code_queue[0][0] < t - CODE_REPLAY_WINDOW:
            self.codes.pop(self._code_queue.popleft()[1], None)
        while self._ended_queue and self._ended_queue[0][0] < t - ENDED_SESSION_RETENTION:
            self._drop_session(self._ended_queue.popleft()[1])
        while self._session_queue and self._session_queue[0][0] < t - SESSION_MAX_AGE:
            self._drop_session(self._session_queue.popleft()[1])
        while self._jti_queue and self._jti_queue[0][0] < t:
            jti = self._jti_queue.popleft()[1]
            self.revoked_jtis.discard(jti)
            self.journal.add(("revoked_jti", jti))

    def _drop_session(self, session_id: str) -> None:
        session = self.sessions.pop(session_id, None)
        if session is None:
            return
        self.journal.add(("session", session_id))
        user_sessions = self._user_sessions.get(session.user_id)
        if user_sessions is not None:
            user_sessions.discard(session_id)
            if not user_sessions:
                del self._user_sessions[session.user_id]
        for token in self._session_tokens.pop(session_id, ()):
            rt = self.refresh_tokens.pop(token, None)
            self.journal.add(("refresh_token", token))
            if rt is not None and rt.family_id in self.revoked_families:
                self.revoked_families.discard(rt.family_id)  # nothing of the family is left to refuse
                self.journal.add(("revoked_family", rt.family_id))


# ---- the seed's objects -----------------------------------------------------------------------------
def _clients(seed: dict) -> dict[str, Client]:
    return {c["id"]: Client(
        id=c["id"], secret=c["secret"], type=c["type"], name=c.get("name", ""),
        redirect_uris=list(c.get("redirect_uris", [])), post_logout_redirect_uris=list(c.get("post_logout_redirect_uris", [])),
        scopes=list(c.get("scopes", [])), audience=list(c.get("audience", [])), organization_id=c.get("organization_id"),
        custom_claims=dict(c.get("custom_claims", {})), expiry=int(c.get("expiry", 0)),
    ) for c in seed["clients"]}


def _organizations(seed: dict) -> dict[str, Organization]:
    return {o["id"]: Organization(
        id=o["id"], display_name=o["display_name"], external_id=o.get("external_id"), slug=o.get("slug"),
        region_code=o.get("region_code", "US"), metadata=dict(o.get("metadata", {})), logo_url=o.get("logo_url"),
    ) for o in seed.get("organizations", [])}


def _connections(seed: dict) -> dict[str, Connection]:
    return {c["id"]: Connection(c["id"], c["organization_id"], c["type"], c.get("provider", "CUSTOM"),
                                [d.lower() for d in c.get("domains", [])], c.get("enabled", True))
            for c in seed.get("connections", [])}


def _domains(seed: dict) -> dict[str, Domain]:
    """Each connection's `domains`, verified."""
    domains = {}
    for conn in seed.get("connections", []):
        for name in conn.get("domains", []):
            dom = Domain(id=new_id("dom"), domain=name.lower(), organization_id=conn["organization_id"],
                         verification_status="VERIFIED")
            domains[dom.id] = dom
    return domains


def _directories(seed: dict) -> dict[str, Directory]:
    return {d["id"]: Directory(
        id=d["id"], organization_id=d["organization_id"], name=d.get("name", "Directory"),
        provider=d.get("provider", "OKTA"), enabled=d.get("enabled", True),
        groups=[DirectoryGroup(g["id"], g["display_name"]) for g in d.get("groups", [])],
        users=[DirectoryUser(u["id"], u["email"].lower(), u.get("given_name", ""), u.get("family_name", ""),
                             u.get("preferred_username", u["email"].split("@", 1)[0]), list(u.get("groups", [])))
               for u in d.get("users", [])],
    ) for d in seed.get("directories", [])}


def _roles(seed: dict) -> dict[str, Role]:
    return {r["name"]: Role(r["name"], r.get("display_name", ""), r.get("description", ""), list(r.get("permissions", [])))
            for r in seed.get("roles", [])}


def _permissions(seed: dict) -> dict[str, Permission]:
    """The permissions the roles name."""
    permissions: dict[str, Permission] = {}
    for role in seed.get("roles", []):
        for name in role.get("permissions", []):
            permissions.setdefault(name, Permission(name))
    return permissions


def _users(seed: dict) -> dict[str, User]:
    return {u["id"]: User(
        id=u["id"], email=u["email"].lower(), password=u.get("password"), given_name=u.get("given_name", ""),
        family_name=u.get("family_name", ""), name=u.get("name", ""), email_verified=u.get("email_verified", True),
        external_id=u.get("external_id"), metadata=dict(u.get("metadata", {})),
        profile={k: u[k] for k in ("locale", "phone_number") if k in u},
        memberships=[Membership(m["organization_id"], list(m.get("roles", []))) for m in u.get("memberships", [])],
    ) for u in seed.get("users", [])}


def _passkeys(seed: dict) -> dict[str, Passkey]:
    return {p["id"]: Passkey(id=p["id"], user_id=u["id"], display_name=p.get("display_name"))
            for u in seed.get("users", []) for p in u.get("passkeys", [])}


def _api_tokens(seed: dict) -> dict[str, ApiToken]:
    """Only a digest of each key is kept."""
    tokens = {}
    for t in seed.get("api_tokens", []):
        token = ApiToken(id=t.get("id") or new_id("apit"), digest=hashlib.sha256(t["token"].encode()).hexdigest(),
                         suffix=t["token"][-4:], organization_id=t["organization_id"], user_id=t.get("user_id"),
                         custom_claims=dict(t.get("custom_claims", {})), description=t.get("description"))
        tokens[token.id] = token
    return tokens


def _env_connections(env: dict) -> dict[str, EnvConnection]:
    return {c["id"]: EnvConnection(
        id=c["id"], provider_key=c["provider_key"], key_id=c.get("key_id", c["provider_key"]), is_app=True,
        ui_button_title=c.get("display_name", c["provider_key"].title()),
    ) for c in env.get("app_connections", [])}


def _env_settings(seed: dict) -> EnvSettings:
    env = seed.get("environment", {})
    roles = {r["name"] for r in seed.get("roles", [])}
    defaults = env.get("default_roles", {})
    passwordless = env.get("passwordless", {})
    return EnvSettings(
        default_creator_role=defaults.get("creator", "admin" if "admin" in roles else None),
        default_member_role=defaults.get("member", "member" if "member" in roles else None),
        passwordless_type=passwordless.get("type", "LINK_OTP"),
        passwordless_expires_in=int(passwordless.get("expires_in", 300)),
        enforce_same_browser_origin=bool(passwordless.get("enforce_same_browser_origin", False)),
        regenerate_on_resend=bool(passwordless.get("regenerate_on_resend", False)),
    )
