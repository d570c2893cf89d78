"""`--local`: start the bundled local Scalekit environment inside this process and point the
settings and the TLS trust variables (REQUESTS_CA_BUNDLE, GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, ...)
at it, before the SDK opens any connection."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import settings
from .report import CheckFailed, Exit, Report


@dataclass
class SeedFacts:
    """Ids from the seed that the login paths need."""

    login_email: str  # the user the headless login signs in
    sso_organization_id: str | None
    sso_connection_id: str | None
    sso_login_email: str | None  # a user whose email domain belongs to that connection
    resource_ids: tuple[str, ...] = ()  # MCP servers (res_...)
    connections: tuple[dict, ...] = ()  # SSO connections with domains: {id, organization_id, domains}
    user_emails: tuple[str, ...] = ()

    def sso_user_for(self, *, organization_id: str | None = None, connection_id: str | None = None,
                     domain: str | None = None) -> str | None:
        """A seeded user whose email domain belongs to the SSO connection the target routes to."""
        for conn in self.connections:
            if (connection_id and conn["id"] != connection_id) or \
                    (organization_id and conn["organization_id"] != organization_id) or \
                    (domain and domain.lower() not in conn["domains"]):
                continue
            user = next((e for e in self.user_emails if e.rsplit("@", 1)[-1].lower() in conn["domains"]), None)
            if user:
                return user
        return None

    def only_resource(self) -> str:
        """--path mcp without --resource-id: the seed's resource, if it has exactly one."""
        if len(self.resource_ids) == 1:
            return self.resource_ids[0]
        found = ", ".join(self.resource_ids) if self.resource_ids else "none"
        raise CheckFailed(Exit.CONFIG, f"--path mcp: the seed has {len(self.resource_ids)} MCP resources ({found}); "
                          "name one with --resource-id")


def _import():
    """The local environment's package; only its public names (scalekit_local/__init__.py) are used."""
    try:
        import scalekit_local
    except ImportError as exc:
        raise CheckFailed(Exit.CONFIG, f"the local Scalekit environment cannot be loaded ({exc}); the skill's "
                          "scripts/scalekit_local/ folder or its .venv is incomplete: copy the skill again, or delete "
                          "its .venv and run the script again") from None
    return scalekit_local


def seed_facts(seed_path: str | None) -> SeedFacts:
    scalekit_local = _import()
    try:
        seed = scalekit_local.load_seed(seed_path)
    except scalekit_local.SeedError as exc:
        raise CheckFailed(Exit.CONFIG, f"seed: {exc}") from None
    users = seed.get("users", [])
    if not users:
        raise CheckFailed(Exit.CONFIG, "the local environment's seed has no users, so no one can log in")
    connection = next((c for c in seed.get("connections", []) if c.get("domains")), None)
    domains = connection["domains"] if connection else []
    sso_user = next((u["email"] for u in users if u["email"].rsplit("@", 1)[-1].lower() in domains), None)
    return SeedFacts(
        login_email=users[0]["email"],
        sso_organization_id=connection["organization_id"] if connection else None,
        sso_connection_id=connection["id"] if connection else None,
        sso_login_email=sso_user,
        resource_ids=tuple(r["id"] for r in seed.get("resources", [])),
        connections=tuple({"id": c["id"], "organization_id": c["organization_id"],
                           "domains": [d.lower() for d in c["domains"]]}
                          for c in seed.get("connections", []) if c.get("domains")),
        user_emails=tuple(u["email"] for u in users),
    )


def _seed_with_uris(seed_path: str | None, redirect_uri: str, post_logout_uri: str) -> str:
    """A temporary copy of the seed whose app client also allows this run's loopback URIs, so the
    check never competes with an app for the default ports."""
    import yaml

    seed = yaml.safe_load(Path(seed_path or _import().DEFAULT_SEED_PATH).read_text(encoding="utf-8"))
    client = next(c for c in seed["clients"] if c.get("type") == "environment")
    client.setdefault("redirect_uris", []).append(redirect_uri)
    client.setdefault("post_logout_redirect_uris", []).append(post_logout_uri)
    handle, path = tempfile.mkstemp(prefix="scalekit-seed-", suffix=".yaml")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        yaml.safe_dump(seed, out, sort_keys=False)
    return path


_temp_dirs: list[str] = []


def remove_temp_dirs() -> None:
    """Delete the temporary data folders of this run (at exit; cli.run calls it before os._exit too)."""
    while _temp_dirs:
        shutil.rmtree(_temp_dirs.pop(), ignore_errors=True)


atexit.register(remove_temp_dirs)


def _data_dir(data_dir: str | None) -> str:
    """--data-dir, or a temporary folder removed at exit: a one-shot check leaves no CA behind and
    never writes into the skill folder."""
    if data_dir:
        return data_dir
    _temp_dirs.append(tempfile.mkdtemp(prefix="scalekit-local-"))
    return _temp_dirs[-1]


def start(report: Report, login_email: str | None = None, seed_path: str | None = None,
          register: tuple[str, str] | None = None, data_dir: str | None = None):
    """Start LocalScalekit on a free port; return it and Settings built from it. `register` is a
    (redirect URI, post-logout URI) pair to allow in addition to the seed's own; `data_dir` holds its
    CA and keys (None: a temporary folder)."""
    with report.check("local environment") as c:
        scalekit_local = _import()
        temp_seed = _seed_with_uris(seed_path, *register) if register else None
        folder = _data_dir(data_dir)
        try:
            env = scalekit_local.LocalScalekit(port=0, host="127.0.0.1", tls=True, seed_path=temp_seed or seed_path,
                                               auto_login=login_email, data_dir=folder)
            env.start()
        except CheckFailed:
            raise
        except Exception as exc:
            raise CheckFailed(Exit.CONFIG, f"the local Scalekit environment did not start: "
                              f"{type(exc).__name__}: {exc}") from None
        finally:
            if temp_seed:
                os.unlink(temp_seed)
        variables = env.env_vars()
        os.environ.update(variables)  # trust first: the SDK reads these when it connects
        report.add_secret(variables.get(settings.CLIENT_SECRET))
        who = f", headless login as {login_email}" if login_email else ""
        kept = f", data folder {folder}" if data_dir else ""
        c.ok(f"started at {env.url}{who}{kept}", {"url": env.url, "data_dir": str(Path(folder).resolve())})
    found = settings.Settings()
    for name in (settings.ENV_URL, settings.CLIENT_ID, settings.CLIENT_SECRET):
        found.values[name] = variables[name]
        found.sources[name] = "local environment"
    report.info["local"] = True
    return env, found
