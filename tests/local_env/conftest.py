"""Fixtures for the local environment's own tests (the shared ones are in tests/conftest.py)."""
from __future__ import annotations

import httpx
import pytest

from .helpers import ALICE


# These tests assume the default seed's exact state (two organizations, ...), so they use private
# instances (fresh=True) that no other suite can change through the shared fixtures.
@pytest.fixture(scope="session")
def main_env(local_scalekit_factory):
    """TLS instance with the default seed and the login pages."""
    return local_scalekit_factory(fresh=True)


@pytest.fixture(scope="session")
def autologin(local_scalekit_factory):
    """TLS instance that logs alice@acme.test in without a page."""
    return local_scalekit_factory(auto_login=ALICE, fresh=True)


@pytest.fixture(scope="module")
def sdk_env(main_env):
    """Trust settings for in-process Python SDK clients, restored after the module so other suites'
    subprocesses don't inherit them. grpcio reads its roots once per process; all fixture instances
    share one CA (and the bundle keeps the system roots), so that stays harmless."""
    mp = pytest.MonkeyPatch()
    for key, value in main_env.env_vars().items():
        if key not in ("SCALEKIT_ENVIRONMENT_URL", "SCALEKIT_CLIENT_ID", "SCALEKIT_CLIENT_SECRET"):
            mp.setenv(key, value)
    yield
    mp.undo()


@pytest.fixture(scope="module")
def py_client(autologin, sdk_env):
    from scalekit import ScalekitClient

    return ScalekitClient(autologin.url, autologin.client_id, autologin.client_secret)


@pytest.fixture
def http(main_env):
    with httpx.Client(base_url=main_env.url, verify=main_env.ca_bundle, follow_redirects=False,
                      timeout=10) as client:
        yield client


@pytest.fixture
def auto_http(autologin):
    with httpx.Client(base_url=autologin.url, verify=autologin.ca_bundle, follow_redirects=False, timeout=10) as client:
        yield client
