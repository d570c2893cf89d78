"""Fixtures for the local environment's own tests (the shared ones are in tests/conftest.py)."""
from __future__ import annotations

import pytest

from .helpers import ALICE, env_client, sdk_client, trusting


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
    subprocesses don't inherit them. All fixture instances share one CA (and the bundle keeps the
    system roots), so this serves every instance."""
    with trusting(main_env):
        yield


@pytest.fixture(scope="module")
def py_client(autologin, sdk_env):
    return sdk_client(autologin)


@pytest.fixture
def http(main_env):
    with env_client(main_env, follow_redirects=False) as client:
        yield client


@pytest.fixture
def auto_http(autologin):
    with env_client(autologin, follow_redirects=False) as client:
        yield client
