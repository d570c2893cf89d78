"""The Node and Go full-stack templates' own token check, run against the token matrix.

The behaviour suite cannot send a forged ID token through the callback (the environment only issues
good ones), so this calls each template's verify function directly, with the template's environment:
for ID tokens and for user access tokens, the valid token is accepted (its claims returned) and every
variant (wrong audience or issuer, forged signature, unknown kid, alg none, HS256 with the public key,
expired, not yet valid, a client-credentials token) is refused. The callback uses the same function
(Node: `Auth.verify`; Go: the SDK's signature check plus `checkClaims`, which `Auth.Verify` shares);
the nonce check is proven from outside (test_fullstack_templates.py, another nonce).
test_fullstack_id_token.py does this for the Python templates.
"""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from scalekit_checks.token_matrix import fetch_matrix

from . import launcher

TSX = launcher.REPO_ROOT / "node_modules" / ".bin" / "tsx"
# template -> the file that defines the check (Next.js keeps the same auth.ts as Express under lib/)
SOURCES = {"fullstack-express": "src/auth.ts", "fullstack-nextjs": "lib/auth.ts", "fullstack-go": "auth.go"}
NAMES = [n for n in launcher.names("full-stack") if n in SOURCES]

NODE_RUNNER = """
import { readFileSync } from "node:fs";
import { Auth, loadConfig } from %(source)s;
const auth = new Auth(loadConfig());
const out: Record<string, unknown> = {};
for (const [name, token] of Object.entries(JSON.parse(readFileSync(0, "utf8")) as Record<string, string>)) {
  try {
    out[name] = { accepted: true, sub: (await auth.verify(token)).sub };
  } catch (error) {
    out[name] = { accepted: false, why: (error as Error).constructor.name + ": " + (error as Error).message };
  }
}
console.log(JSON.stringify(out));
"""

GO_RUNNER = """package main

import (
\t"context"
\t"encoding/json"
\t"fmt"
\t"os"
)

func main() {
\tcfg, err := LoadConfig()
\tif err != nil {
\t\tpanic(err)
\t}
\tauth := NewAuth(cfg)
\ttokens := map[string]string{}
\tif err := json.NewDecoder(os.Stdin).Decode(&tokens); err != nil {
\t\tpanic(err)
\t}
\tout := map[string]map[string]any{}
\tfor name, token := range tokens {
\t\tclaims, err := auth.Verify(context.Background(), token)
\t\tif err != nil {
\t\t\tout[name] = map[string]any{"accepted": false, "why": err.Error()}
\t\t} else {
\t\t\tout[name] = map[string]any{"accepted": true, "sub": claims["sub"]}
\t\t}
\t}
\tjson.NewEncoder(os.Stdout).Encode(out)
\tfmt.Fprintln(os.Stderr, "checked", len(tokens))
}
"""


def run_check(server, tokens: dict[str, str], tmp_path) -> dict:
    folder = server.template.dir
    if server.template.language == "go":
        work = tmp_path / "go"
        work.mkdir()
        for name in ("go.mod", "go.sum", "auth.go", "session.go"):  # everything but the template's main.go
            shutil.copy(folder / name, work / name)
        (work / "main.go").write_text(GO_RUNNER)
        command, cwd = ["go", "run", "."], work
    else:
        script = tmp_path / "check.mts"  # an ES module: top-level await
        script.write_text(NODE_RUNNER % {"source": json.dumps(str(folder / SOURCES[server.template.name]))})
        command, cwd = [str(TSX), str(script)], folder  # imports resolve from the template's node_modules
    result = subprocess.run(command, cwd=cwd, env=server.env, input=json.dumps(tokens), capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["id", "user"])
@pytest.mark.parametrize("name", NAMES)
def test_verify_accepts_the_valid_token_and_refuses_every_variant(template_server, tmp_path, name, kind):
    server = template_server(name)
    local = server.local
    matrix = fetch_matrix(local.url, kind, [local.client_id], ["openid"] if kind == "user" else (),
                          ca_bundle=local.ca_bundle)
    found = run_check(server, {"valid": matrix.token, **{v.name: v.token for v in matrix}}, tmp_path)
    assert found["valid"] == {"accepted": True, "sub": matrix.claims["sub"]}, found["valid"]
    let_in = {v.name: v.why for v in matrix if found[v.name]["accepted"]}
    assert not let_in, f"{name} accepted bad {kind} tokens: {let_in}"
    assert {"aud_other_api", "iss_other_environment", "forged_signature", "alg_none", "hs256_public_key",
            "unknown_kid", "expired", "not_yet_valid"} <= {v.name for v in matrix}


def test_the_nextjs_template_keeps_the_express_wiring():
    """The Next.js README says lib/auth.ts and lib/session.ts are the Express template's files."""
    express, nextjs = launcher.TEMPLATES_DIR / "fullstack-express", launcher.TEMPLATES_DIR / "fullstack-nextjs"
    if not (express.is_dir() and nextjs.is_dir()):
        pytest.skip("needs both Node full-stack templates")
    for a, b in (("src/auth.ts", "lib/auth.ts"), ("src/session.ts", "lib/session.ts")):
        assert (express / a).read_text() == (nextjs / b).read_text(), f"{b} differs from the Express template's {a}"
