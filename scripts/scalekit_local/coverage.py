"""Generates SUPPORTED.md: what the local environment emulates, measured against the pinned SDKs.

    .venv/bin/python scripts/scalekit_local/coverage.py            # print the matrix
    .venv/bin/python scripts/scalekit_local/coverage.py --write    # write SUPPORTED.md at the repo root
    .venv/bin/python scripts/scalekit_local/coverage.py --check    # exit 1 when SUPPORTED.md is stale

Inputs, all read from what is installed and from this package (nothing hand-counted):
- the gRPC services and their RPCs in the Python SDK's descriptors (scalekit.v1.*_pb2) and in the
  Node SDK's service declarations (lib/pkg/grpc/**/_pb.d.ts);
- which RPCs each SDK's public methods call: `self.<stub>.<Rpc>` in the Python SDK's sub-clients,
  `this.<client>.<rpc>` in the Node SDK's, with the public method names;
- which RPCs this environment implements: the servicers services/register_all() adds, where an RPC
  answered by `_unimplemented` is not implemented;
- the HTTP routes of the environment's app (oauth.build_app) and the endpoints the SDKs build or
  call (their *_ENDPOINT / *Endpoint constants);
- AREAS below: the feature area of each service, how its data gets in (seed keys, checked against
  seed.schema.json by tests/local_env/test_supported.py) and the known differences from the hosted
  service.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import pkgutil
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO = PACKAGE_DIR.parents[1]
OUTPUT = REPO / "SUPPORTED.md"
NODE_LIB = REPO / "node_modules" / "@scalekit-sdk" / "node" / "lib"
AGENTKIT = {"ConnectedAccountService", "ToolService", "ProviderService", "McpService", "AgentkitAnalyticsService",
            "AgentkitLogsService"}


@dataclass
class Area:
    title: str
    services: tuple[str, ...]          # short service names
    seed: tuple[str, ...]              # seed keys that feed it ("" = none)
    data: str                          # how data gets in, in words
    differences: tuple[str, ...] = ()
    rpc_filter: str | None = None      # a regex: only these RPCs of a shared service belong here


AREAS = [
    Area("Organizations", ("OrganizationService",), ("organizations",),
         "seed `organizations`; CreateOrganization and the other writes",
         ("Admin portal links open a read-only local page (`/magicLink/{id}`), not the hosted portal.",
          "Organization settings features are stored and echoed; they do not switch features on or off.")),
    Area("Users and memberships", ("UserService",), ("users", "users[].memberships"),
         "seed `users`; CreateUserAndMembership, CreateMembership; just-in-time users at SSO and social logins",
         ("Invitation emails go to `/_local/mailbox`; signing in accepts an invitation (there is no invitation link page).",
          "Searches match substrings of email, name, id and external id; the hosted ranking is not emulated.")),
    Area("Roles and permissions", ("RolesService",), ("roles", "environment.default_roles"),
         "seed `roles` (their permissions become permissions), `environment.default_roles`; the writes",
         ("DeleteRoleBase on a role without a base succeeds (the hosted answer is undocumented).",)),
    Area("SSO and environment connections", ("ConnectionService",),
         ("connections", "environment.providers", "environment.password_connection_id", "environment.app_connections"),
         "seed `connections` (organizations), `environment.providers` and `environment.app_connections` (environment)",
         ("Connections authenticate against a local identity-provider page; SAML and OIDC configuration fields are "
          "echoed, not used.",
          "The password and social connections of the seed cannot be changed with UpdateEnvironmentConnection.")),
    Area("Domains", ("DomainService",), ("connections[].domains",),
         "seed `connections[].domains` (verified); CreateDomain (pending until VerifyDomain or "
         "`POST /_local/domains/{id}/verify`)", ("No DNS lookup: verification is explicit.",)),
    Area("Directories (SCIM)", ("DirectoryService",), ("directories",),
         "seed `directories`; CreateDirectory; users and groups pushed with `/_local/directories/...`",
         ("No SCIM endpoint for identity providers: pushes go through the `/_local/directories/` admin routes.",)),
    Area("Sessions", ("SessionService",), (),
         "logins at `/oauth/authorize` (no seed key: sessions are runtime state)",
         ("Device, location and idle expiry are not tracked; sessions end at logout, revocation or user deletion.",)),
    Area("M2M (organization) clients", ("ClientService",), ("clients",),
         "seed `clients` (type m2m); CreateOrganizationClient", (
             "Custom claims are nested under `custom_claims` in the access token, as the interceptor reference shows "
             "M2M token claims; claims added by a PRE_M2M_TOKEN_CREATION interceptor are not emulated (interceptors "
             "are not).",
             "Token lifetime is the client's `expiry` (3600 s when created over the API without one); seeded clients "
             "use the environment's `--access-token-ttl`."),
         rpc_filter=r"OrganizationClient"),
    Area("MCP resources, their clients and consents", ("ClientService",), ("resources", "resources[].clients"),
         "seed `resources` and `resources[].clients`; CreateResourceClient; dynamic client registration; consents "
         "from the consent page", (
             "The consent page is shown on every authorization, also while a consent exists.",
             "Requested scopes are not intersected with the environment's permissions at token time.",
             "Clients registered at run time (DCR, metadata documents, CreateResourceClient) are not saved by "
             "`--persist`."),
         rpc_filter=r"^(?!.*OrganizationClient)"),  # the rest of ClientService
    Area("API keys", ("ApiTokenService",), ("api_tokens",), "seed `api_tokens`; CreateToken", (
        "Unknown, invalidated and expired keys answer NOT_FOUND (TOKEN_NOT_FOUND, TOKEN_EXPIRED); the hosted codes "
        "are undocumented (both SDKs raise ScalekitValidateTokenFailureException for either).",
        "UpdateToken with an empty claims map leaves the claims unchanged (proto3 cannot tell it from no map).")),
    Area("Passwordless email", ("PasswordlessService",), ("environment.passwordless",),
         "seed `environment.passwordless` (type, expiry); SendPasswordlessEmail; read codes and links at "
         "`/_local/mailbox`", ("Emails are not sent; templates and template variables are not rendered.",
                               "Wrong, used and expired credentials answer INVALID_ARGUMENT (undocumented upstream).")),
    Area("Passkeys", ("WebAuthnService",), ("users[].passkeys",), "seed `users[].passkeys`",
         ("Registering and signing in with a passkey need an authenticator and are not emulated.",)),
    Area("Events", ("EventsService",), ("webhooks",),
         "events the environment emits (organizations, users, memberships, logins, directories) or `POST /_local/events`",
         ("Only the last 1000 events are kept, in memory.",)),
    Area("Custom-auth bridge", ("AuthService",), ("resources[].custom_auth",),
         "seed `resources[].custom_auth`; the app posts the user", ()),
]

HTTP_DIFFERENCES = (
    "The login, identity-provider, social-provider and consent pages are local stand-ins for the hosted pages.",
    "Revoked access tokens (logout, a replayed authorization code) are refused where the environment itself checks "
    "tokens (`/userinfo`, the gRPC API, the custom-auth bridge); the SDKs validate JWTs locally, here as in production.",
    "The `/_local/` routes exist only here: admin helpers for tests and development (cross-site requests are refused).",
)
HTTP_AREAS = [  # (path prefix, area) in order; the first match wins
    ("/.well-known/oauth-authorization-server", "MCP authorization server"),
    ("/.well-known/openid-configuration/resources", "MCP authorization server"),
    ("/resources/", "MCP authorization server"),
    ("/oauth/mcp/", "MCP authorization server"),
    ("/.well-known/", "OAuth 2.0 and OpenID Connect"),
    ("/oauth/", "OAuth 2.0 and OpenID Connect"),
    ("/oidc/", "OAuth 2.0 and OpenID Connect"),
    ("/userinfo", "OAuth 2.0 and OpenID Connect"),
    ("/keys", "OAuth 2.0 and OpenID Connect"),
    ("/ui/", "Login pages"),
    ("/api/v1/connections/", "Custom-auth bridge"),
    ("/sso/", "Custom-auth bridge"),
    ("/magicLink/", "Admin portal"),
    ("/_local/", "Local admin routes (not in the hosted service)"),
]


# ---- the SDKs ---------------------------------------------------------------------------------------
def python_services() -> dict[str, list[str]]:
    """Full service name -> RPC names, from the Python SDK's descriptors."""
    import scalekit.v1 as v1

    services: dict[str, list[str]] = {}
    for module in pkgutil.walk_packages(v1.__path__, "scalekit.v1."):
        if module.name.endswith("_pb2"):
            for service in importlib.import_module(module.name).DESCRIPTOR.services_by_name.values():
                services[service.full_name] = [m.name for m in service.methods]
    services.pop("scalekit.v1.errdetails.Dummy", None)
    return services


def node_services() -> dict[str, list[str]]:
    """Service name (package from the file's folder) -> RPC names, from the Node SDK's GenService declarations."""
    services: dict[str, list[str]] = {}
    for path in sorted((NODE_LIB / "pkg" / "grpc").rglob("*_pb.d.ts")):
        package = ".".join(path.relative_to(NODE_LIB / "pkg" / "grpc").parts[:-1])
        text = path.read_text()
        for match in re.finditer(r"export declare const (\w+): GenService<\{(.*?)\n\}>;", text, re.S):
            names = re.findall(r"^    (\w+): \{$", match.group(2), re.M)
            services[f"{package}.{match.group(1)}"] = [n[0].upper() + n[1:] for n in names]
    services.pop("scalekit.v1.errdetails.Dummy", None)
    return services


def python_calls() -> dict[str, list[str]]:
    """"Service/Rpc" -> the Python SDK's public methods that call it ("users.resend_invite")."""
    import scalekit

    root = Path(scalekit.__file__).parent
    attrs = dict(re.findall(r"self\.(\w+) = (\w+)\(self\.core_client", (root / "client.py").read_text()))
    by_class = {cls: attr for attr, cls in attrs.items()}
    calls: dict[str, set[str]] = {}
    for path in sorted([*root.glob("*.py"), *root.glob("actions/*.py")]):
        tree = ast.parse(path.read_text())
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            stubs = {}
            for node in ast.walk(cls):  # self.<attr> = <Service>Stub(...)
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and \
                        isinstance(node.value.func, ast.Name) and node.value.func.id.endswith("ServiceStub"):
                    for target in node.targets:
                        if isinstance(target, ast.Attribute):
                            stubs[target.attr] = node.value.func.id[:-len("Stub")]
            owner = by_class.get(cls.name, path.stem)
            for fn in (n for n in cls.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")):
                for node in ast.walk(fn):
                    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and \
                            node.value.attr in stubs and isinstance(node.value.value, ast.Name) and node.value.value.id == "self":
                        calls.setdefault(f"{stubs[node.value.attr]}/{node.attr}", set()).add(f"{owner}.{fn.name}")
    return {k: sorted(v) for k, v in calls.items()}


def node_calls() -> dict[str, list[str]]:
    """"Service/Rpc" -> the Node SDK's public methods that call it ("user.resendInvite")."""
    modules = dict(re.findall(r'const (\w+) = __importDefault\(require\("\./([\w-]+)"\)\)', (NODE_LIB / "scalekit.js").read_text()))
    attrs = {modules[var]: attr for attr, var in re.findall(r"this\.(\w+) = new (\w+)\.default\(", (NODE_LIB / "scalekit.js").read_text())
             if var in modules}
    calls: dict[str, set[str]] = {}
    for path in sorted(NODE_LIB.glob("*.js")):
        text = path.read_text()
        clients = dict(re.findall(r"this\.(\w+) = this\.grpcConnect\.createClient\(\w+\.(\w+)\)", text))
        if not clients:
            continue
        method = None
        for line in text.splitlines():
            head = re.match(r"^    (\w+)\(.*\) \{$", line)
            if head:
                method = head.group(1)
            for attr, rpc in re.findall(r"this\.(\w+)\.(\w+)\b", line):
                if attr in clients and method and not method.startswith("_"):
                    name = f"{clients[attr]}/{rpc[0].upper()}{rpc[1:]}"
                    calls.setdefault(name, set()).add(f"{attrs.get(path.stem, path.stem)}.{method}")
    return {k: sorted(v) for k, v in calls.items()}


def sdk_http_paths() -> dict[str, set[str]]:
    """HTTP path -> {"Python", "Node"}: the endpoints the SDKs call or build URLs for."""
    import scalekit

    found: dict[str, set[str]] = {}
    sources = {"Python": [*Path(scalekit.__file__).parent.rglob("*.py")], "Node": [*NODE_LIB.glob("*.js")]}
    for sdk, paths in sources.items():
        for path in paths:
            text = path.read_text()
            for value in re.findall(r"(?:ENDPOINT|Endpoint)\s*=\s*[\"']/?([\w/]+)[\"']", text):
                found.setdefault("/" + value, set()).add(sdk)
            if re.search(r"/proxy(?:[\"'`]|\$\{)", text):  # AgentKit actions: {env}/proxy/<path>
                found.setdefault("/proxy/...", set()).add(sdk)
    return found


# ---- the environment --------------------------------------------------------------------------------
def _context():
    from scalekit_local.context import Context
    from scalekit_local.seed import load_seed
    from scalekit_local.store import Store

    return Context(store=Store(load_seed()), tokens=None, tls=True, host="127.0.0.1", port=8443)


def implemented_rpcs() -> set[str]:
    """"Service/Rpc" names this environment answers (not with UNIMPLEMENTED)."""
    from scalekit_local.services import register_all

    class Recorder:
        def __init__(self):
            self.servicers = []

        def add_generic_rpc_handlers(self, handlers):
            pass

        def add_registered_method_handlers(self, service_name, handlers):
            pass

    recorder = Recorder()
    original = {}
    # Each add_<X>Servicer_to_server(servicer, server) is called by register(); capture the servicer.
    for module in pkgutil.walk_packages(importlib.import_module("scalekit.v1").__path__, "scalekit.v1."):
        if module.name.endswith("_pb2_grpc"):
            mod = importlib.import_module(module.name)
            for name in dir(mod):
                if name.startswith("add_") and name.endswith("Servicer_to_server"):
                    original[(mod, name)] = getattr(mod, name)
                    setattr(mod, name, lambda servicer, server, _n=name: recorder.servicers.append((_n, servicer)))
    try:
        register_all(recorder, _context())
    finally:
        for (mod, name), fn in original.items():
            setattr(mod, name, fn)
    done: set[str] = set()
    for adder, servicer in recorder.servicers:
        service = adder[len("add_"):-len("Servicer_to_server")]
        for attr in dir(type(servicer)):
            value = getattr(type(servicer), attr)
            if attr[:1].isupper() and callable(value) and not getattr(value, "unimplemented", False):
                done.add(f"{service}/{attr}")
    return done


def http_routes() -> list[tuple[str, tuple[str, ...]]]:
    from scalekit_local.oauth import build_app

    routes: dict[str, set[str]] = {}
    for route in build_app(_context()).routes:
        methods = set(getattr(route, "methods", None) or {"GET"}) - {"HEAD"}
        routes.setdefault(route.path, set()).update(methods)
    return sorted((path, tuple(sorted(methods))) for path, methods in routes.items())


# ---- the matrix -------------------------------------------------------------------------------------
@dataclass
class Row:
    service: str
    rpc: str
    implemented: bool
    python: list[str] = field(default_factory=list)
    node: list[str] = field(default_factory=list)


def collect() -> dict:
    py, nd = python_services(), node_services()
    # Full names from the Python descriptors; Node's file paths do not show nested packages
    # (auth/passwordless_pb.d.ts declares scalekit.v1.auth.passwordless.PasswordlessService).
    short = {name.rsplit(".", 1)[1]: name for name in nd}
    short.update({name.rsplit(".", 1)[1]: name for name in py})
    nd = {short[name.rsplit(".", 1)[1]]: rpcs for name, rpcs in nd.items()}
    py_calls, nd_calls, done = python_calls(), node_calls(), implemented_rpcs()
    rows: dict[str, list[Row]] = {}
    for service, full in sorted(short.items()):
        rpcs = sorted(set(py.get(full, [])) | set(nd.get(full, [])))
        rows[service] = [Row(service, rpc, f"{service}/{rpc}" in done, py_calls.get(f"{service}/{rpc}", []),
                             nd_calls.get(f"{service}/{rpc}", [])) for rpc in rpcs]
    called = [r for rs in rows.values() for r in rs if (r.python or r.node) and r.service not in AGENTKIT]
    return {"rows": rows, "called": called, "full": short, "python": py, "node": nd,
            "routes": http_routes(), "sdk_paths": sdk_http_paths()}


def _mark(flag: bool) -> str:
    return "yes" if flag else "**no**"


def _methods(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names) if names else "-"


def render(data: dict) -> str:
    rows, called = data["rows"], data["called"]
    done = sum(r.implemented for r in called)
    pct = 100 * done / len(called) if called else 0
    lines = [
        "# What the local Scalekit environment supports",
        "",
        "Generated by `scripts/scalekit_local/coverage.py --write` from the service descriptors of the pinned SDKs",
        "(Python `scalekit-sdk-python`, Node `@scalekit-sdk/node`) and from the environment's own servicers and",
        "routes; `tests/local_env/test_supported.py` fails when this file is stale. Do not edit it by hand.",
        "",
        f"**{done} of {len(called)} RPCs ({pct:.0f}%)** that a public method of either SDK calls are implemented, "
        "AgentKit left aside (out of scope, listed at the end). An RPC that is not implemented answers "
        "`UNIMPLEMENTED`; the SDKs raise `ScalekitNotImplementedException`.",
        "",
        "Columns: *Python* and *Node* name the SDK methods that call the RPC (`-`: that SDK has none). "
        "*Data in* says how state reaches the area: seed keys of `scripts/scalekit_local/seed.schema.json`, "
        "the API, or activity.",
        "",
    ]
    for area in AREAS:
        area_rows = [r for s in area.services for r in rows.get(s, [])
                     if area.rpc_filter is None or re.search(area.rpc_filter, r.rpc)]
        used = [r for r in area_rows if r.python or r.node]
        others = [r for r in area_rows if not (r.python or r.node)]
        names = ", ".join(f"`{data['full'][s]}`" for s in area.services)
        lines += [f"## {area.title}", "",
                  f"Service: {names}. "
                  f"Implemented: {sum(r.implemented for r in used)} of {len(used)} that the SDKs call. "
                  f"Data in: {area.data}.", "",
                  "| RPC | Implemented | Python | Node |", "|---|---|---|---|"]
        lines += [f"| `{r.rpc}` | {_mark(r.implemented)} | {_methods(r.python)} | {_methods(r.node)} |" for r in used]
        if others:
            lines += ["", "Also in the descriptors, called by neither SDK: " + ", ".join(
                f"`{r.rpc}`{' (implemented)' if r.implemented else ''}" for r in others) + "."]
        if area.differences:
            lines += ["", "Known differences from the hosted service:", ""] + [f"- {d}" for d in area.differences]
        lines.append("")

    lines += ["## HTTP endpoints", "",
              "Served on the same origin as the gRPC API. *SDKs* names the SDKs that call the endpoint or build URLs "
              "for it.", "", "| Area | Path | Methods | SDKs |", "|---|---|---|---|"]
    areas = list(dict.fromkeys(a for _, a in HTTP_AREAS))
    placed = [(next((a for prefix, a in HTTP_AREAS if path.startswith(prefix)), "Other"), path, methods)
              for path, methods in data["routes"]]
    for area, path, methods in sorted(placed, key=lambda r: (areas.index(r[0]) if r[0] in areas else len(areas), r[1])):
        sdks = ", ".join(sorted(data["sdk_paths"].get(path, ()))) or "-"
        lines.append(f"| {area} | `{path}` | {' '.join(methods)} | {sdks} |")
    served = {p for p, _ in data["routes"]}
    missing = sorted(p for p in data["sdk_paths"] if p not in served)
    if missing:
        lines += ["", "Called by an SDK and not served: " + ", ".join(
            f"`{p}` ({', '.join(sorted(data['sdk_paths'][p]))}{', AgentKit actions' if p.startswith('/proxy') else ''})"
            for p in missing) + "."]
    lines += ["", "Known differences from the hosted service:", ""] + [f"- {d}" for d in HTTP_DIFFERENCES]
    lines.append("")

    lines += ["## Out of scope: AgentKit", "",
              "Connected accounts, tools, providers, actions and AgentKit's MCP service are not emulated:", ""]
    for service in sorted(AGENTKIT):
        if service in rows:
            count = sum(1 for r in rows[service] if r.python or r.node)
            lines.append(f"- `{data['full'][service]}`: {len(rows[service])} RPCs, {count} called by the SDKs")
    covered = {s for a in AREAS for s in a.services} | AGENTKIT
    rest = sorted(s for s in rows if s not in covered)
    lines += ["", "## Other services in the SDK descriptors", "",
              "Dashboard and platform services that no public SDK method calls; not emulated unless marked:", ""]
    for service in rest:
        impl = sum(r.implemented for r in rows[service])
        count = len(rows[service])
        lines.append(f"- `{data['full'][service]}` ({count} RPC{'s' if count != 1 else ''}"
                     f"{f', {impl} implemented' if impl else ''})")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate SUPPORTED.md (the local environment's coverage matrix).")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help=f"write {OUTPUT.name}")
    mode.add_argument("--check", action="store_true", help=f"exit 1 when {OUTPUT.name} is stale")
    args = parser.parse_args(argv)
    text = render(collect())
    if args.write:
        OUTPUT.write_text(text)
        return 0
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT.name} is stale: run {Path(__file__).relative_to(REPO)} --write", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(PACKAGE_DIR.parent))
    sys.exit(main())
