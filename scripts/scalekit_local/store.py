"""The one state store shared by the HTTP endpoints and the gRPC services.

Seeded objects (clients, organizations, connections, users, roles) and runtime objects (pending
login requests, authorization codes, sessions, refresh-token families, revoked token ids, request
counters) live here, in memory, behind one lock: HTTP handlers run on the event loop thread and
gRPC handlers on grpcio's worker threads. Runtime state is indexed and pruned as it expires, and
changes are journaled for persistence.py (--persist), so a login costs the same however much state
has grown.
"""
from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

SOCIAL_PROVIDERS = ("google", "github", "microsoft", "gitlab", "linkedin", "salesforce")
STANDARD_SCOPES = ("openid", "profile", "email", "offline_access")
CODE_REPLAY_WINDOW = 600               # a used or expired code is remembered this long, to catch replays
ENDED_SESSION_RETENTION = 3600         # an ended session stays visible (GetSession: REVOKED) this long
SESSION_MAX_AGE = 7 * 24 * 3600        # the absolute session lifetime SessionService reports
REVOKED_JTI_TTL = 24 * 3600            # a revoked token id whose expiry is unknown is kept this long


def new_id(prefix: str) -> str:
    """A Scalekit-looking id: prefix, underscore, 17 or 18 digits."""
    return f"{prefix}_{10**17 + secrets.randbelow(9 * 10**17)}"


def now() -> float:
    return time.time()


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


class Store:
    """Seeded and runtime state. Every public method takes the lock."""

    def __init__(self, seed: dict[str, Any]):
        self.lock = threading.RLock()
        self.stats: Counter[str] = Counter()
        env = seed.get("environment", {})
        self.environment_name: str = env.get("name", "local")
        self.password_connection_id: str = env.get("password_connection_id") or "conn_70000000000000101"
        self.providers: dict[str, Provider] = {
            p["provider"]: Provider(p["provider"], p["connection_id"], p.get("enabled", True))
            for p in env.get("providers", [])
        }
        from .token_claims import make as make_claim

        self.token_claims = [make_claim(c["key"], c["expression"]) for c in env.get("token_claims", [])]
        self.clients: dict[str, Client] = {}
        for c in seed["clients"]:
            self.clients[c["id"]] = Client(
                id=c["id"], secret=c["secret"], type=c["type"], name=c.get("name", ""),
                redirect_uris=list(c.get("redirect_uris", [])),
                post_logout_redirect_uris=list(c.get("post_logout_redirect_uris", [])),
                scopes=list(c.get("scopes", [])), audience=list(c.get("audience", [])),
                organization_id=c.get("organization_id"), custom_claims=dict(c.get("custom_claims", {})),
                expiry=int(c.get("expiry", 0)),
            )
        self.roles: dict[str, Role] = {
            r["name"]: Role(r["name"], r.get("display_name", ""), r.get("description", ""), list(r.get("permissions", [])))
            for r in seed.get("roles", [])
        }
        self.organizations: dict[str, Organization] = {
            o["id"]: Organization(
                id=o["id"], display_name=o["display_name"], external_id=o.get("external_id"), slug=o.get("slug"),
                region_code=o.get("region_code", "US"), metadata=dict(o.get("metadata", {})), logo_url=o.get("logo_url"),
            )
            for o in seed.get("organizations", [])
        }
        self.connections: dict[str, Connection] = {
            c["id"]: Connection(c["id"], c["organization_id"], c["type"], c.get("provider", "CUSTOM"),
                                [d.lower() for d in c.get("domains", [])], c.get("enabled", True))
            for c in seed.get("connections", [])
        }
        self.users: dict[str, User] = {}
        for u in seed.get("users", []):
            self.users[u["id"]] = User(
                id=u["id"], email=u["email"].lower(), password=u.get("password"), given_name=u.get("given_name", ""),
                family_name=u.get("family_name", ""), name=u.get("name", ""), email_verified=u.get("email_verified", True),
                external_id=u.get("external_id"), metadata=dict(u.get("metadata", {})),
                profile={k: u[k] for k in ("locale", "phone_number") if k in u},
                memberships=[Membership(m["organization_id"], list(m.get("roles", []))) for m in u.get("memberships", [])],
            )
        # Management objects (domains, directories, permissions, portal links, org settings): records.py.
        from .records import seed_records

        seed_records(self, seed)
        self.resources: list[dict] = [dict(r) for r in seed.get("resources", [])]  # MCP resources: mcp_as.py
        # Runtime state. Every change goes through the methods below, which keep the indexes, the
        # expiry queues (oldest first, so pruning never scans) and the persistence journal current.
        self.auth_requests: dict[str, AuthRequest] = {}
        self.codes: dict[str, AuthCode] = {}
        self.sessions: dict[str, Session] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.revoked_families: set[str] = set()
        self.revoked_jtis: set[str] = set()
        self._user_sessions: dict[str, set[str]] = {}          # user id -> session ids
        self._session_tokens: dict[str, list[str]] = {}        # session id -> refresh tokens
        self._request_queue: deque[tuple[float, str]] = deque()  # (expires_at, request id)
        self._code_queue: deque[tuple[float, str]] = deque()     # (expires_at, code)
        self._ended_queue: deque[tuple[float, str]] = deque()    # (ended_at, session id)
        self._session_queue: deque[tuple[float, str]] = deque()  # (created_at, session id)
        self._jti_queue: deque[tuple[float, str]] = deque()      # (token expiry, revoked jti)
        self.journal: set[tuple[str, str]] = set()  # (kind, id) changed since the last save (persistence.py)
        self.management_dirty = True  # management objects may have changed since the last save
        # Event bus + webhook deliveries (webhooks.py: store.events.emit(type, data, organization_id=None))
        # and injected faults (faults.py).
        from .faults import FaultRegistry
        from .webhooks import EventBus

        self.events = EventBus(endpoints=seed.get("webhooks", []))
        self.faults = FaultRegistry()
        from .mailbox import Mailbox

        self.mailbox = Mailbox()  # emails the environment would send (mailbox.py)

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

    def default_roles(self, org_id: str | None, which: str) -> list[str]:
        """The default creator or member role (RolesService defaults, seed environment.default_roles)."""
        settings = self.env_settings["environment"]
        name = settings.default_creator_role if which == "creator" else \
            settings.org_default_member_roles.get(org_id or "", settings.default_member_role)
        return [name] if name and self.find_role(name, org_id) else []

    def provision_user(self, email: str, organization_id: str | None, given_name: str = "", family_name: str = "") -> User:
        """Just-in-time user for an SSO or social login with an email the seed does not know."""
        with self.lock:
            existing = self.user_by_email(email)
            if existing:
                if organization_id and existing.membership(organization_id) is None:
                    existing.memberships.append(Membership(organization_id, self.default_roles(organization_id, "member")))
                    self.management_changed()
                    self.events.provisioned(existing, organization_id, new_user=False)
                return existing
            local = email.split("@", 1)[0]
            user = User(id=new_id("usr"), email=email.lower(), given_name=given_name or local.capitalize(),
                        family_name=family_name)
            personal = organization_id is None
            if personal:  # social sign-up: a personal organization, as full-stack auth does
                org = Organization(id=new_id("org"), display_name=f"{user.display_name}'s workspace")
                self.organizations[org.id] = org
                organization_id = org.id
                roles = self.default_roles(organization_id, "creator")
            else:
                roles = self.default_roles(organization_id, "member")
            user.memberships.append(Membership(organization_id, roles))
            self.users[user.id] = user
            self.management_changed()
            self.events.provisioned(user, organization_id, new_user=True, new_org=self.organizations[organization_id] if personal else None)
            return user

    def accept_invitation(self, user: User, org_id: str | None) -> None:
        """Signing in to an organization accepts a pending, unexpired invitation to it."""
        with self.lock:
            m = user.membership(org_id)
            if m is not None and m.status == "PENDING_INVITE" and (m.invite_expires_at or 0) >= now():
                m.status, m.accepted_at = "ACTIVE", now()
                user.email_verified = True
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
