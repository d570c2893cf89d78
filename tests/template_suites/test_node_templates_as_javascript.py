"""The JavaScript path the Express pages give plain-JS apps: after `npm run build`, copy the built
dist/*.js files the page names into the app. They are ES modules that need nothing else from dist/,
and copied into a plain JavaScript app (package.json "type": "module", no TypeScript) they load and
work against the local environment: a login URL the environment answers and sealed cookies for
full-stack, a valid token accepted and a forged one refused for MCP."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from . import launcher

pytestmark = pytest.mark.slow  # builds the templates

REPO = Path(__file__).resolve().parents[2]
RESOURCE_ID = "res_70000000000004001"  # the default seed's MCP server, at http://localhost:8000/mcp
IMPORT = re.compile(r"""(?:^|\n)\s*(?:import|export)\b[^'"]*?\bfrom\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]""")

# template -> (the files the page says to copy, a plain-JS program that uses them and prints JSON)
CASES = {
    "fullstack-express": (("auth.js", "session.js"), """
import { Auth, InvalidToken, loadConfig } from "./auth.js";
import { seal, unseal } from "./session.js";

const auth = new Auth(loadConfig());
const { url, transaction } = auth.startLogin({});
const secret = process.env.SESSION_SECRET;
const roundTrip = JSON.stringify(unseal(seal(transaction, secret), secret)) === JSON.stringify(transaction);
const tampered = unseal(seal(transaction, secret).slice(0, -2) + "AA", secret) === undefined;
const login = await fetch(url, { redirect: "manual" });
let refused = "";
try { await auth.verify("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."); } catch (error) { refused = error.constructor.name; }
console.log(JSON.stringify({ url, roundTrip, tampered, loginStatus: login.status, refused,
                             invalidToken: refused !== "" && InvalidToken !== undefined }));
"""),
}
MCP_PROGRAM = """
import { protectedResourceMetadata, verifyAccessToken } from "./auth.js";
import { mcpEndpoint } from "./sessions.js";
EXTRA_IMPORT

const answer = await fetch(`${process.env.SCALEKIT_ENVIRONMENT_URL}/_local/token-matrix`, {
  method: "POST", headers: { "content-type": "application/json" },
  body: JSON.stringify({ kind: "mcp", audience: [process.env.SCALEKIT_RESOURCE_ID, "http://localhost:8000/mcp"],
                         scopes: ["todo:read"] }),
});
const matrix = await answer.json();
const info = await verifyAccessToken(matrix.valid.token);
const refused = [];
for (const variant of matrix.variants) {
  try { await verifyAccessToken(variant.token); } catch { refused.push(variant.name); }
}
console.log(JSON.stringify({ scopes: info.scopes, sub: info.extra.sub, refused, variants: matrix.variants.length,
                             resource: protectedResourceMetadata.resource, endpoint: typeof mcpEndpoint,
                             extra: EXTRA_CHECK }));
"""
CASES["mcp-express"] = (("auth.js", "sessions.js"), MCP_PROGRAM.replace("EXTRA_IMPORT", "").replace(
    "EXTRA_CHECK", '"none"'))
CASES["mcp-custom-auth-node"] = (("auth.js", "sessions.js", "login.js", "users.js"), MCP_PROGRAM.replace(
    "EXTRA_IMPORT", 'import { loginRoutes } from "./login.js";').replace("EXTRA_CHECK", "typeof loginRoutes"))


def relative_imports(source: str) -> set[str]:
    return {m.group(1) or m.group(2) for m in IMPORT.finditer(source) if (m.group(1) or m.group(2)).startswith(".")}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("js-builds")

    def build(name: str) -> launcher.Template:
        template = launcher.load(launcher.TEMPLATES_DIR / name)
        launcher.build(template, log_dir)
        return template
    return build


@pytest.mark.parametrize("name", sorted(CASES))
def test_built_files_work_in_a_plain_javascript_app(built, local_scalekit, name, tmp_path):
    template = built(name)
    files, program = CASES[name]
    app = tmp_path / "my-js-app"
    app.mkdir()
    (app / "package.json").write_text(json.dumps({"name": "my-js-app", "private": True, "type": "module"}))
    (app / "node_modules").symlink_to(template.dir / "node_modules")  # what `npm install` of the pinned packages gives
    for file in files:
        source = (template.dir / "dist" / file).read_text()
        needs = {Path(spec).name for spec in relative_imports(source)}
        assert needs <= set(files), f"dist/{file} imports {sorted(needs - set(files))}: the page must name them too"
        shutil.copy(template.dir / "dist" / file, app / file)
    (app / "app.js").write_text(program)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCALEKIT_")}
    env.update(local_scalekit.env_vars(), APP_URL="http://localhost:3000" if name.startswith("fullstack") else
               "http://localhost:8000", SESSION_SECRET="0123456789abcdef" * 4, SCALEKIT_RESOURCE_ID=RESOURCE_ID,
               SCALEKIT_CONNECTION_ID="conn_70000000000002001", DEMO_USER_PASSWORD="a-long-demo-password")
    done = subprocess.run(["node", "app.js"], cwd=app, env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if name == "fullstack-express":
        assert result["url"].startswith(local_scalekit.url + "/oauth/authorize?"), result
        assert result["roundTrip"] and result["tampered"], result
        assert result["loginStatus"] in (200, 302), result  # the environment accepts the login request
        assert result["refused"] == "InvalidToken", result
    else:
        assert result["scopes"] == ["todo:read"] and result["sub"].startswith("usr_"), result
        assert len(result["refused"]) == result["variants"] >= 10, result  # every single-fault token refused
        assert result["resource"] == "http://localhost:8000/mcp" and result["endpoint"] == "function", result
        assert result["extra"] == ("function" if name == "mcp-custom-auth-node" else "none"), result
