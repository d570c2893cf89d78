"""Fixtures for the local environment's own tests (the shared ones are in tests/conftest.py)."""
from __future__ import annotations

import httpx
import pytest

from .helpers import ALICE


@pytest.fixture(scope="session")
def autologin(local_scalekit_factory):
    """TLS instance that logs alice@acme.test in without a page."""
    return local_scalekit_factory(auto_login=ALICE)


@pytest.fixture(scope="session")
def sdk_env(local_scalekit):
    """Trust settings for in-process Python SDK clients. grpcio reads its roots once per process;
    all fixture instances share one CA, so setting them once for the session is enough."""
    mp = pytest.MonkeyPatch()
    for key, value in local_scalekit.env_vars().items():
        if key not in ("SCALEKIT_ENVIRONMENT_URL", "SCALEKIT_CLIENT_ID", "SCALEKIT_CLIENT_SECRET"):
            mp.setenv(key, value)
    yield
    mp.undo()


@pytest.fixture(scope="session")
def py_client(autologin, sdk_env):
    from scalekit import ScalekitClient

    return ScalekitClient(autologin.url, autologin.client_id, autologin.client_secret)


@pytest.fixture
def http(local_scalekit):
    with httpx.Client(base_url=local_scalekit.url, verify=local_scalekit.ca_bundle, follow_redirects=False,
                      timeout=10) as client:
        yield client


@pytest.fixture
def auto_http(autologin):
    with httpx.Client(base_url=autologin.url, verify=autologin.ca_bundle, follow_redirects=False, timeout=10) as client:
        yield client
