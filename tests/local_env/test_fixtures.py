"""The shared fixtures other suites build on (tests/conftest.py): their documented surface."""
from __future__ import annotations

import os
import subprocess
import sys

import httpx

DOCUMENTED_VARS = {"SCALEKIT_ENVIRONMENT_URL", "SCALEKIT_CLIENT_ID", "SCALEKIT_CLIENT_SECRET", "REQUESTS_CA_BUNDLE",
                   "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE"}


def test_local_scalekit_fixture_surface(local_scalekit):
    variables = local_scalekit.env_vars()
    assert DOCUMENTED_VARS <= set(variables)
    assert variables["SCALEKIT_ENVIRONMENT_URL"] == local_scalekit.url
    assert variables["SCALEKIT_CLIENT_ID"] == local_scalekit.client_id.strip() != ""
    assert variables["SCALEKIT_CLIENT_SECRET"] == local_scalekit.client_secret
    assert variables["REQUESTS_CA_BUNDLE"] == local_scalekit.ca_bundle and os.path.isfile(local_scalekit.ca_bundle)
    assert local_scalekit.url == f"https://127.0.0.1:{local_scalekit.port}"
    # A child process with these variables, and nothing else set up, trusts the environment.
    code = "import os, requests; print(requests.get(os.environ['SCALEKIT_ENVIRONMENT_URL'] + '/keys', timeout=10).status_code)"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **variables}, capture_output=True, text=True,
                         timeout=30, check=False)
    assert out.stdout.strip() == "200", out.stderr
    assert local_scalekit.stats().get("keys", 0) >= 1


def test_factory_reuses_instances_unless_fresh(local_scalekit_factory, local_scalekit, main_env):
    assert local_scalekit_factory() is local_scalekit
    assert main_env is not local_scalekit and main_env.port != local_scalekit.port  # main_env is fresh=True
    assert main_env.ca_bundle == local_scalekit.ca_bundle  # one CA for the whole session
    keys = [httpx.get(i.url + "/keys", verify=i.ca_bundle).json() for i in (main_env, local_scalekit)]
    assert keys[0] == keys[1]
