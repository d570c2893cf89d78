"""Fixtures for the template suites: each template built once per run and started once per options.

    template_server(name, *, auto_login=None, access_token_ttl=None, local_args=(), extra_env=None)
        -> launcher.RunningTemplate

Each started template gets its own local Scalekit environment (a fresh instance, ~1 s) with the
template's callback and post-logout URLs or its MCP server URL registered for the template's port
(launcher.registrations). `local_args` adds flags (e.g. ("--mcp-token-issuer", "resource")).
Servers keep running until the end of the session, so every test of a suite shares them.
"""
from __future__ import annotations

import pytest

from . import launcher


@pytest.fixture(scope="session")
def template_server(local_scalekit_factory, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("template-logs")
    running: dict[tuple, launcher.RunningTemplate] = {}

    def start(name: str, *, auto_login: str | None = None, access_token_ttl: int | None = None,
              local_args: tuple[str, ...] = (), extra_env: dict[str, str] | None = None) -> launcher.RunningTemplate:
        key = (name, auto_login, access_token_ttl, tuple(local_args), tuple(sorted((extra_env or {}).items())))
        if key in running and running[key].proc.poll() is None:
            return running[key]
        template = launcher.load(launcher.TEMPLATES_DIR / name)
        launcher.build(template, log_dir)
        port = launcher.free_port()
        local = local_scalekit_factory(fresh=True, auto_login=auto_login, access_token_ttl=access_token_ttl,
                                       extra_args=(*launcher.registrations(template, port), *local_args))
        running[key] = launcher.start(template, local, port, log_dir, extra_env)
        return running[key]

    yield start
    for server in running.values():
        server.stop()


@pytest.fixture(scope="session")
def start_app(template_server):
    """Full-stack suites: name -> fullstack.App, each template started once (20-second access tokens,
    the custom claim `plan`) and shared by every test."""
    from .fullstack import start

    return lambda name, **options: start(template_server, name, **options)
