"""What the full-stack suites share: each template started once (20-second access tokens, the custom
claim `plan`), wrapped with the webapp.Target that drives it.

    start_app(name, **template_server options) -> App   (a session fixture, in conftest.py)
"""
from __future__ import annotations

from dataclasses import dataclass

from scalekit_checks import webapp

from . import launcher

TEMPLATES = launcher.names("full-stack")
TTL = 20  # seconds an access token lives; templates refresh at most 10 s early
CUSTOM_CLAIM = ("--token-claim", "plan=organization.metadata.plan")  # Acme: enterprise, Globex: starter


@dataclass
class App:
    name: str
    server: launcher.RunningTemplate
    target: webapp.Target

    def route(self, key: str, **values) -> str:
        return self.target.url + self.server.manifest["routes"][key].format(**values)


def target_for(server) -> webapp.Target:
    local = server.local
    return webapp.Target(server.url, server.manifest["routes"], local.url, local.client_id, local.client_secret,
                         verify=local.ca_bundle)


def start(template_server, name: str, **options) -> App:
    server = template_server(name, access_token_ttl=TTL, local_args=CUSTOM_CLAIM, **options)
    return App(name, server, target_for(server))
