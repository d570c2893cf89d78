"""Every template folder is complete, and every version comes from versions.json."""
from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from . import launcher

REPO = launcher.REPO_ROOT
VERSIONS = json.loads((REPO / "versions.json").read_text(encoding="utf-8"))
SEED = yaml.safe_load((REPO / "scripts" / "scalekit_local" / "default_seed.yaml").read_text(encoding="utf-8"))
TEMPLATES = launcher.discover()
REQUIRED_FILES = ("README.md", ".env.example", "template.json")
DEPENDENCY_FILES = {"python": ("requirements.txt",), "node": ("package.json", "package-lock.json"),
                    "go": ("go.mod", "go.sum")}


def normalize(name: str) -> str:
    """PEP 503 name, so `PyJWT` and `pyjwt` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


PYTHON_PINS = {normalize(k): v for k, v in VERSIONS["python"].items()}


def python_pins(path: Path) -> tuple[dict[str, str], list[str]]:
    """({name: version}, [lines that are not `name==version`]) of a requirements file."""
    pins, loose = {}, []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]+\])?==([^\s;]+)", line)
        if match:
            pins[normalize(match.group(1))] = match.group(3)
        else:
            loose.append(line)
    return pins, loose


def node_pins(path: Path) -> dict[str, str]:
    manifest = json.loads(path.read_text(encoding="utf-8"))
    return {**manifest.get("dependencies", {}), **manifest.get("devDependencies", {})}


def go_pins(path: Path) -> dict[str, str]:
    """Direct requirements of a go.mod (lines without `// indirect`)."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s*(?:require\s+)?([\w.\-/]+\.[\w.\-/]+)\s+(v\S+)\s*(//.*)?$", line)
        if match and "indirect" not in (match.group(3) or ""):
            pins[match.group(1)] = match.group(2)
    return pins


def mismatches(pins: dict[str, str], known: dict[str, str], *, must_be_listed: bool) -> list[str]:
    problems = []
    for name, version in sorted(pins.items()):
        if name not in known:
            if must_be_listed:
                problems.append(f"{name} {version} is not in versions.json")
        elif known[name] != version:
            problems.append(f"{name} is {version}, versions.json says {known[name]}")
    return problems


def test_templates_folder_has_a_readme_and_schema():
    assert (launcher.TEMPLATES_DIR / "README.md").is_file()
    jsonschema.Draft202012Validator.check_schema(json.loads(launcher.SCHEMA_PATH.read_text()))


@pytest.mark.parametrize("template", TEMPLATES, ids=str)
def test_template_folder_is_complete(template):
    for name in REQUIRED_FILES + DEPENDENCY_FILES[template.language]:
        assert (template.dir / name).is_file(), f"templates/{template.name}/{name} is missing"
    jsonschema.validate(template.manifest, json.loads(launcher.SCHEMA_PATH.read_text()))
    prefix = launcher.FOLDER_PREFIX[template.path]
    assert template.name == f"{prefix}-{template.manifest['framework']}", \
        f"folder should be named {prefix}-{template.manifest['framework']}"


@pytest.mark.parametrize("template", TEMPLATES, ids=str)
def test_template_pins_come_from_versions_json(template):
    if template.language == "python":
        pins, loose = python_pins(template.dir / "requirements.txt")
        assert not loose, f"{template.name}/requirements.txt: pin exactly (name==version): {loose}"
        problems = mismatches(pins, PYTHON_PINS, must_be_listed=True)
    elif template.language == "node":
        pins = node_pins(template.dir / "package.json")
        ranged = [f"{k}@{v}" for k, v in pins.items() if not re.fullmatch(r"\d+\.\d+\.\d+(-[\w.]+)?", v)]
        assert not ranged, f"{template.name}/package.json: pin exact versions, no ranges: {ranged}"
        problems = mismatches(pins, VERSIONS["node"], must_be_listed=True)
    else:
        problems = mismatches(go_pins(template.dir / "go.mod"), VERSIONS["go"], must_be_listed=True)
    assert not problems, f"{template.name}: " + "; ".join(problems)


@pytest.mark.parametrize("template", TEMPLATES, ids=str)
def test_env_example_has_names_and_no_secrets(template):
    text = (template.dir / ".env.example").read_text(encoding="utf-8")
    names = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, re.M))
    assert "SCALEKIT_ENVIRONMENT_URL" in names
    assert ("SCALEKIT_RESOURCE_ID" if template.path == "mcp" else "SCALEKIT_CLIENT_ID") in names
    seeded = [c["secret"] for c in SEED["clients"] if c.get("secret")]
    assert not any(secret in text for secret in seeded), f"{template.name}/.env.example holds a real secret"
    for name in template.manifest.get("secrets", []):
        assert name in names, f"{template.name}: secret {name} is not explained in .env.example"


def test_root_manifests_agree_with_versions_json():
    problems = []
    for requirements in ("requirements.txt", "scripts/requirements.txt"):  # the first includes the second
        pins, _ = python_pins(REPO / requirements)
        problems += [f"{requirements}: {p}" for p in mismatches(pins, PYTHON_PINS, must_be_listed=False)]
    problems += [f"package.json: {p}" for p in mismatches(node_pins(REPO / "package.json"), VERSIONS["node"],
                                                           must_be_listed=False)]
    go_mod = REPO / "tests" / "go" / "go.mod"
    problems += [f"tests/go/go.mod: {p}" for p in mismatches(go_pins(go_mod), VERSIONS["go"], must_be_listed=True)]
    assert not problems, "; ".join(problems)


def test_mcp_clients_pins_come_from_versions_json():
    """The real MCP clients of test_mcp_real_clients.py are pinned like the templates."""
    pins = node_pins(launcher.REPO_ROOT / "tests" / "template_suites" / "mcp_clients" / "package.json")
    assert not mismatches(pins, VERSIONS["node"], must_be_listed=True)


def test_skill_metadata_names_the_pinned_sdks():
    front = (REPO / "SKILL.md").read_text(encoding="utf-8").split("---")[1]
    metadata = yaml.safe_load(front)["metadata"]
    assert metadata["python-sdk"] == f"scalekit-sdk-python {VERSIONS['python']['scalekit-sdk-python']}"
    assert metadata["node-sdk"] == f"@scalekit-sdk/node {VERSIONS['node']['@scalekit-sdk/node']}"
    go_sdk = "github.com/scalekit-inc/scalekit-sdk-go/v2"
    assert metadata["go-sdk"] == f"{go_sdk} {VERSIONS['go'][go_sdk]}"


def test_a_weakened_pin_is_caught(tmp_path):
    """The checks can fail: a range, an unlisted package and a drifted version are each reported."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("fastapi>=0.100\nleftpad==1.0\nscalekit-sdk-python==2.20.0\n")
    pins, loose = python_pins(requirements)
    assert loose == ["fastapi>=0.100"]
    assert mismatches(pins, PYTHON_PINS, must_be_listed=True) == [
        "leftpad 1.0 is not in versions.json", "scalekit-sdk-python is 2.20.0, versions.json says 2.21.0"]
    go_mod = tmp_path / "go.mod"
    go_mod.write_text("module x\n\nrequire (\n\tgithub.com/scalekit-inc/scalekit-sdk-go/v2 v2.7.0\n"
                      "\tgolang.org/x/sync v0.19.0 // indirect\n)\n")
    assert go_pins(go_mod) == {"github.com/scalekit-inc/scalekit-sdk-go/v2": "v2.7.0"}


# Modules that several templates carry as the same file: each template is a whole app a user copies,
# so the module is copied, not imported, and a fix must land in every copy.
SHARED_MODULES = [
    ("fullstack-express/src/auth.ts", "fullstack-nextjs/lib/auth.ts"),
    ("fullstack-express/src/session.ts", "fullstack-nextjs/lib/session.ts"),
    ("mcp-express/src/auth.ts", "mcp-custom-auth-node/src/auth.ts"),
    ("mcp-express/src/sessions.ts", "mcp-custom-auth-node/src/sessions.ts"),
    ("mcp-fastapi/scalekit_auth.py", "mcp-custom-auth-python/scalekit_auth.py"),
]


@pytest.mark.parametrize("original,copy", SHARED_MODULES, ids=[c for _, c in SHARED_MODULES])
def test_shared_template_modules_stay_one_file(original, copy):
    root = REPO / "templates"
    assert (root / original).read_bytes() == (root / copy).read_bytes(), (
        f"templates/{copy} differs from templates/{original}: make the same change in both")
