"""Seed files: YAML checked against seed.schema.json, then for references between objects.

Every problem is reported as one SeedError whose message names the offending key, for example
``users[1].memberships[0].organization_id: unknown organization 'org_1'``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

PACKAGE_DIR = Path(__file__).resolve().parent
SCHEMA_PATH = PACKAGE_DIR / "seed.schema.json"
DEFAULT_SEED_PATH = PACKAGE_DIR / "default_seed.yaml"


class SeedError(ValueError):
    """A seed file that cannot be used; str() is a one-line message naming the key."""


def _key_path(parts) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _schema_message(error) -> str:
    path = list(error.absolute_path)
    if error.validator == "required":
        missing = re.match(r"'([^']+)'", error.message)
        name = missing.group(1) if missing else "?"
        return f"{_key_path(path + [name])}: required key is missing"
    if error.validator == "additionalProperties":
        extra = re.findall(r"'([^']+)'", error.message)
        name = extra[0] if extra else "?"
        return f"{_key_path(path + [name])}: unknown key"
    if error.validator == "enum":
        allowed = ", ".join(str(v) for v in error.validator_value)
        return f"{_key_path(path)}: {error.instance!r} is not one of: {allowed}"
    if error.validator == "pattern":
        return f"{_key_path(path)}: {error.instance!r} does not have the expected form"
    if error.validator == "const":
        return f"{_key_path(path)}: must be {error.validator_value!r}"
    return f"{_key_path(path)}: {error.message}"


def _load_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def load_seed(path: str | Path | None = None) -> dict[str, Any]:
    """Read, validate and return a seed as plain data (defaults filled in)."""
    import jsonschema  # imported here: only needed while loading

    seed_path = Path(path) if path else DEFAULT_SEED_PATH
    try:
        text = seed_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SeedError(f"seed file not found: {seed_path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SeedError(f"cannot read seed file {seed_path}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise SeedError(f"{seed_path}: not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise SeedError(f"{seed_path}: (top level): must be a mapping with 'version' and 'clients'")

    validator = jsonschema.Draft202012Validator(_load_schema())
    best = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if best is not None:
        raise SeedError(f"{seed_path}: {_schema_message(best)}")
    try:
        _check_references(data)
    except SeedError as exc:
        raise SeedError(f"{seed_path}: {exc}") from None
    return data


def add_registrations(data: dict, *, redirect_uris=(), post_logout_redirect_uris=(), mcp_resources=(),
                      mcp_scopes=("todo:read", "todo:write"), mcp_token_issuer: str = "environment",
                      mcp_login_url: str | None = None, webhook_urls=(), token_claims=()) -> dict[str, str]:
    """Register what the command line names on top of a loaded seed: more redirect URIs for the app
    client, an MCP resource per server URL, a webhook endpoint per webhook URL and custom access-token
    claims (`KEY=EXPRESSION`), as registering them in the dashboard would. Returns {mcp server URL:
    resource id}. The resource id and the webhook secret are derived from the URL (the secret also
    from the app's client secret), so they are the same on every start: tokens issued and secrets
    copied before a restart stay valid. With `mcp_login_url` those MCP servers keep their own login
    page (custom auth, bridge.py), each through a connection id derived the same way."""
    import base64
    import hashlib

    app = next(c for c in data["clients"] if c["type"] == "environment")
    for key, uris in (("redirect_uris", redirect_uris), ("post_logout_redirect_uris", post_logout_redirect_uris)):
        for uri in uris:
            _check_uri(uri, key)
            if uri not in app.setdefault(key, []):
                app[key].append(uri)
    ids: dict[str, str] = {}
    resources = data.setdefault("resources", [])
    if mcp_login_url:
        _check_uri(mcp_login_url, "--mcp-login-url")
    for url in mcp_resources:
        _check_uri(url, "--mcp-resource")
        existing = next((r for r in resources if url in r["urls"]), None)
        if existing is None:
            number = int(hashlib.sha256(url.encode()).hexdigest(), 16) % 10**17
            existing = {"id": f"res_{number:017d}", "name": f"MCP server at {url}", "urls": [url],
                        "scopes": list(mcp_scopes), "dynamic_client_registration": True,
                        "client_id_metadata_documents": True, "token_issuer": mcp_token_issuer}
            resources.append(existing)
        if mcp_login_url and not existing.get("custom_auth"):
            number = int(hashlib.sha256(("custom-auth " + url).encode()).hexdigest(), 16) % 10**17
            existing["custom_auth"] = {"login_url": mcp_login_url, "connection_id": f"conn_{number:017d}"}
        ids[url] = existing["id"]
    for spec in token_claims:
        from .token_claims import TokenClaimError, parse

        try:
            claim = parse(spec)
        except TokenClaimError as exc:
            raise SeedError(f"--token-claim {exc}") from None
        data.setdefault("environment", {}).setdefault("token_claims", []).append(
            {"key": claim.key, "expression": claim.expression})
    webhooks = data.setdefault("webhooks", [])
    for url in webhook_urls:
        _check_uri(url, "--webhook-url")
        if not any(w["url"] == url for w in webhooks):
            key = hashlib.sha256(f"webhook\0{url}\0{app['secret']}".encode()).digest()[:24]
            webhooks.append({"url": url, "secret": "whsec_" + base64.b64encode(key).decode()})
    _check_references(data)
    return ids


def webhook_secret(data: dict, url: str) -> str | None:
    """The signing secret of the webhook endpoint registered for `url` (seed or --webhook-url)."""
    return next((w.get("secret") for w in data.get("webhooks", []) if w["url"] == url), None)


def _check_uri(uri: str, where: str) -> None:
    if not re.fullmatch(r"https?://[^\s#/?]+(/[^\s#]*)?", uri):
        raise SeedError(f"{where}: {uri!r} is not an absolute http(s) URL without a fragment")


def _check_references(data: dict) -> None:
    """Checks the schema cannot express: unique ids, and references that point somewhere."""
    orgs = data.get("organizations", [])
    org_ids = _unique(orgs, "id", "organizations")
    _unique(orgs, "external_id", "organizations")
    roles = {r["name"] for r in data.get("roles", [])}
    _unique(data.get("roles", []), "name", "roles")

    from .token_claims import TokenClaimError, make

    claims = data.get("environment", {}).get("token_claims", [])
    _unique(claims, "key", "environment.token_claims")
    for claim in claims:
        try:
            make(claim["key"], claim["expression"])
        except TokenClaimError as exc:
            raise SeedError(f"environment.token_claims: {exc}") from None

    clients = data["clients"]
    _unique(clients, "id", "clients")
    if not any(c["type"] == "environment" for c in clients):
        raise SeedError("clients: at least one client must have type 'environment'")
    for i, client in enumerate(clients):
        org = client.get("organization_id")
        if org is not None and org not in org_ids:
            raise SeedError(f"clients[{i}].organization_id: unknown organization {org!r}")
        if client["type"] == "m2m" and (client.get("redirect_uris") or client.get("post_logout_redirect_uris")):
            raise SeedError(f"clients[{i}].redirect_uris: m2m clients cannot have redirect URIs")

    env = data.get("environment", {})
    connection_ids: set[str] = set()
    if env.get("password_connection_id"):
        connection_ids.add(env["password_connection_id"])
    seen_providers: set[str] = set()
    for i, prov in enumerate(env.get("providers", [])):
        if prov["provider"] in seen_providers:
            raise SeedError(f"environment.providers[{i}].provider: {prov['provider']!r} is listed twice")
        seen_providers.add(prov["provider"])
        if prov["connection_id"] in connection_ids:
            raise SeedError(f"environment.providers[{i}].connection_id: {prov['connection_id']!r} is used twice")
        connection_ids.add(prov["connection_id"])

    for key in ("creator", "member"):
        name = env.get("default_roles", {}).get(key)
        if name is not None and name not in roles:
            raise SeedError(f"environment.default_roles.{key}: unknown role {name!r}")
    for i, app in enumerate(env.get("app_connections", [])):
        if app["id"] in connection_ids:
            raise SeedError(f"environment.app_connections[{i}].id: {app['id']!r} is used twice")
        connection_ids.add(app["id"])

    domain_owner: dict[str, str] = {}
    for i, conn in enumerate(data.get("connections", [])):
        if conn["id"] in connection_ids:
            raise SeedError(f"connections[{i}].id: {conn['id']!r} is used twice")
        connection_ids.add(conn["id"])
        if conn["organization_id"] not in org_ids:
            raise SeedError(f"connections[{i}].organization_id: unknown organization {conn['organization_id']!r}")
        for j, domain in enumerate(conn.get("domains", [])):
            if domain in domain_owner:
                raise SeedError(f"connections[{i}].domains[{j}]: {domain!r} already belongs to {domain_owner[domain]}")
            domain_owner[domain] = conn["id"]

    resources = data.get("resources", [])
    _unique(resources, "id", "resources")
    resource_urls: set[str] = set()
    resource_client_ids: set[str] = set()
    for i, res in enumerate(resources):
        for j, url in enumerate(res["urls"]):
            if url in resource_urls:
                raise SeedError(f"resources[{i}].urls[{j}]: {url!r} belongs to two resources")
            resource_urls.add(url)
        for j, client in enumerate(res.get("clients", [])):
            if client["id"] in resource_client_ids:
                raise SeedError(f"resources[{i}].clients[{j}].id: {client['id']!r} is used twice")
            resource_client_ids.add(client["id"])
        custom = res.get("custom_auth")
        if custom and custom["connection_id"] in connection_ids:
            raise SeedError(f"resources[{i}].custom_auth.connection_id: {custom['connection_id']!r} is used twice")
        if custom:
            connection_ids.add(custom["connection_id"])

    users = data.get("users", [])
    user_ids = _unique(users, "id", "users")
    emails: set[str] = set()
    passkey_ids: set[str] = set()
    for i, user in enumerate(users):
        email = user["email"].lower()
        if email in emails:
            raise SeedError(f"users[{i}].email: {user['email']!r} is used twice")
        emails.add(email)
        for j, passkey in enumerate(user.get("passkeys", [])):
            if passkey["id"] in passkey_ids:
                raise SeedError(f"users[{i}].passkeys[{j}].id: {passkey['id']!r} is used twice")
            passkey_ids.add(passkey["id"])
        member_orgs: set[str] = set()
        for j, membership in enumerate(user.get("memberships", [])):
            org = membership["organization_id"]
            if org not in org_ids:
                raise SeedError(f"users[{i}].memberships[{j}].organization_id: unknown organization {org!r}")
            if org in member_orgs:
                raise SeedError(f"users[{i}].memberships[{j}].organization_id: {org!r} is listed twice")
            member_orgs.add(org)
            for k, role in enumerate(membership.get("roles", [])):
                if role not in roles:
                    raise SeedError(f"users[{i}].memberships[{j}].roles[{k}]: unknown role {role!r}")

    tokens = data.get("api_tokens", [])
    _unique(tokens, "id", "api_tokens")
    _unique(tokens, "token", "api_tokens")
    members = {(u["id"], m["organization_id"]) for u in users for m in u.get("memberships", [])}
    for i, token in enumerate(tokens):
        if token["organization_id"] not in org_ids:
            raise SeedError(f"api_tokens[{i}].organization_id: unknown organization {token['organization_id']!r}")
        user_id = token.get("user_id")
        if user_id is not None and user_id not in user_ids:
            raise SeedError(f"api_tokens[{i}].user_id: unknown user {user_id!r}")
        if user_id is not None and (user_id, token["organization_id"]) not in members:
            raise SeedError(f"api_tokens[{i}].user_id: {user_id!r} is not a member of {token['organization_id']!r}")

    directories = data.get("directories", [])
    _unique(directories, "id", "directories")
    for i, directory in enumerate(directories):
        if directory["organization_id"] not in org_ids:
            raise SeedError(f"directories[{i}].organization_id: unknown organization {directory['organization_id']!r}")
        group_ids = _unique(directory.get("groups", []), "id", f"directories[{i}].groups")
        _unique(directory.get("users", []), "id", f"directories[{i}].users")
        for j, user in enumerate(directory.get("users", [])):
            for k, group in enumerate(user.get("groups", [])):
                if group not in group_ids:
                    raise SeedError(f"directories[{i}].users[{j}].groups[{k}]: unknown group {group!r}")


def _unique(items: list[dict], key: str, where: str) -> set:
    seen: set = set()
    for i, item in enumerate(items):
        value = item.get(key)
        if value is None:
            continue
        if value in seen:
            raise SeedError(f"{where}[{i}].{key}: {value!r} is used twice")
        seen.add(value)
    return seen
