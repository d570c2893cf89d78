"""The Python full-stack templates' own ID-token check, run against the token matrix for ID tokens.

The behaviour suite cannot send a forged ID token through the callback (the environment only issues
good ones), so this calls each template's `verify_id_token` directly, in the template's own venv:
the valid ID token is accepted and every variant (wrong audience or issuer, forged signature, unknown
kid, alg none, HS256 with the public key, expired, not yet valid, a client-credentials token) is
refused. The nonce check is proven from outside (test_fullstack_templates.py, another nonce).
"""
from __future__ import annotations

import json
import subprocess

import pytest

from . import launcher

# template -> module that defines verify_id_token(id_token, nonce)
MODULES = {"fullstack-fastapi": "auth", "fullstack-django": "scalekit_auth"}
RUNNER = r"""
import json, sys
sys.path[:0] = [sys.argv[1]]
from scalekit_checks.token_matrix import fetch_matrix, problems
module = __import__(sys.argv[2])
matrix = fetch_matrix(module.ENV_URL, "id", [module.CLIENT_ID])
print(json.dumps({"problems": problems(lambda token: module.verify_id_token(token, ""), matrix),
                  "variants": [v.name for v in matrix]}))
"""

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", [n for n in launcher.names("full-stack") if n in MODULES])
def test_verify_id_token_refuses_every_variant_of_the_matrix(template_server, name):
    server = template_server(name)
    result = subprocess.run([".venv/bin/python", "-c", RUNNER, str(launcher.REPO_ROOT / "scripts"), MODULES[name]],
                            cwd=server.template.dir, env=server.env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert not found["problems"], found["problems"]
    assert {"aud_other_api", "iss_other_environment", "forged_signature", "alg_none", "expired"} <= set(
        found["variants"])
