"""The local environment's layers (scripts/scalekit_local/, described in its __init__.py): imports only
go down, and nothing circles back.

    Entry      __init__.py cli.py server.py coverage.py   start, stop, wire the layers
    Listener   listener/                                   one port: TLS, ALPN, h2c sniffing
    Http       endpoints/                                  OAuth/OIDC, login pages, MCP AS, bridge, portal, admin routes
    Grpc       services/                                   one servicer class per Scalekit service
    Domain     domain/                                     operations both transports call; the Context
    Cross      cross/                                      events and webhooks, mailbox, faults, gRPC errors
    State      state/                                      the store, its records, seed and file
    Keys       keys/                                       CA, TLS, signing
    Base       ids.py safe_input.py                        leaves: ids and clock, untrusted input
    Checks     scripts/scalekit_checks/, the user scripts  what users run against any environment

The rules are read from the code's own imports (every `import` and `from ... import`, also inside
functions), so a new import that breaks one fails here with the file, the line and the rule.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
PACKAGE = SCRIPTS / "scalekit_local"

LAYERS = {  # first match wins: a path relative to scripts/, a folder ends with "/"
    "scalekit_local/listener/": "Listener",
    "scalekit_local/endpoints/": "Http",
    "scalekit_local/services/": "Grpc",
    "scalekit_local/domain/": "Domain",
    "scalekit_local/cross/": "Cross",
    "scalekit_local/state/": "State",
    "scalekit_local/keys/": "Keys",
    "scalekit_local/ids.py": "Base",
    "scalekit_local/safe_input.py": "Base",
    "scalekit_local/": "Entry",
    "local_scalekit.py": "Entry",
    "scalekit_checks/": "Checks",
    "": "Checks",  # validate_env.py, test_*.py and the other scripts users run
}
# What each layer may import (besides its own modules).
ALLOWED = {
    "Entry": {"Listener", "Http", "Grpc", "Domain", "Cross", "State", "Keys", "Base"},
    "Listener": {"Base"},
    "Http": {"Domain", "Cross", "State", "Keys", "Base"},
    "Grpc": {"Domain", "Cross", "State", "Keys", "Base"},
    "Domain": {"Cross", "State", "Keys", "Base"},
    "Cross": {"Base"},
    "State": {"Keys", "Base"},
    "Keys": {"Base"},
    "Base": set(),
    "Checks": {"Entry"},
}
NEVER = {  # the reasons, for the message
    ("State", "Http"): "state knows no transport",
    ("State", "Grpc"): "state knows no transport",
    ("Grpc", "Http"): "gRPC services call the domain, not HTTP handlers",
    ("Http", "Grpc"): "HTTP handlers call the domain, not servicers",
    ("Checks", "Http"): "checks use the public facade only",
    ("Checks", "State"): "checks use the public facade only",
    ("Cross", "Http"): "events and faults sit below the transports",
    ("Keys", "Http"): "signing knows no transport",
    ("State", "Cross"): "the store holds state; faults, events live beside it",
    ("Cross", "Grpc"): "events and faults sit below the transports",
    ("Domain", "Http"): "the domain knows no transport",
    ("Domain", "Grpc"): "the domain knows no transport",
    ("State", "Domain"): "the state knows nothing above it",
    ("Keys", "State"): "signing knows nothing above it",
}
CHECKS_FACADE = "scalekit_local"  # the only module of the environment the checks may import


def layer_of(path: Path) -> str:
    rel = path.relative_to(SCRIPTS).as_posix()
    return next(layer for prefix, layer in LAYERS.items() if rel.startswith(prefix) or prefix == "")


def module_of(path: Path) -> str:
    parts = list(path.relative_to(SCRIPTS).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def path_of(module: str) -> Path | None:
    base = SCRIPTS.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def sources() -> list[Path]:
    found = sorted(PACKAGE.rglob("*.py")) + sorted((SCRIPTS / "scalekit_checks").rglob("*.py"))
    return found + sorted(p for p in SCRIPTS.glob("*.py") if p.name != "_bootstrap.py")


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import of scalekit_local or scalekit_checks in the file; `from X import
    name` counts as an import of X.name when that is a module, else of X."""
    here = module_of(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.append((node.lineno, full if path_of(full) else base))
    return [(line, module) for line, module in found if module.split(".")[0] in ("scalekit_local", "scalekit_checks")]


def graph() -> dict[str, list[tuple[int, str]]]:
    return {module_of(p): imports(p) for p in sources()}


def where(module: str, line: int) -> str:
    return f"{path_of(module).relative_to(SCRIPTS.parent).as_posix()}:{line}"


def test_imports_only_go_down():
    problems = []
    for module, targets in graph().items():
        source = path_of(module)
        layer = layer_of(source)
        for line, target in targets:
            target_path = path_of(target)
            if target_path is None:
                problems.append(f"{where(module, line)} imports {target}, which does not exist")
                continue
            other = layer_of(target_path)
            if layer == "Checks" and other != "Checks" and target != CHECKS_FACADE:
                problems.append(f"{where(module, line)} imports {target}: checks use the public facade only "
                                f"({CHECKS_FACADE}, its __init__.py)")
            elif other != layer and other not in ALLOWED[layer]:
                reason = NEVER.get((layer, other), f"{layer} may import only {', '.join(sorted(ALLOWED[layer]))}")
                problems.append(f"{where(module, line)} imports {target}: {layer} -> {other} ({reason})")
    assert not problems, "imports that break the layers:\n" + "\n".join(problems)


def test_no_circles():
    edges = {m: sorted({t for _, t in targets if path_of(t)}) for m, targets in graph().items()}
    state: dict[str, str] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        state[module] = "open"
        stack.append(module)
        for target in edges.get(module, []):
            if state.get(target) == "open":
                circles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in edges:
        if module not in state:
            visit(module)
    assert not circles, "modules that import each other in a circle:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_the_never_rules_are_covered_by_the_allowed_imports():
    """Each never-rule names an import that ALLOWED forbids, so the first test enforces all of them."""
    assert not [pair for pair in NEVER if pair[1] in ALLOWED[pair[0]]]


def test_no_module_is_loaded_by_name():
    """Every import is an import statement (importlib and __import__ hide the arrows). coverage.py may
    load the SDK's own generated modules by name."""
    problems = []
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = node.func.attr if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) else \
                node.func.id if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) else None
            if name in ("import_module", "__import__") and path != PACKAGE / "coverage.py":
                problems.append(f"{path.relative_to(SCRIPTS.parent)}:{node.lineno} calls {name}")
    assert not problems, "\n".join(problems)


def test_servicers_are_module_level_classes_listed_in_one_place():
    from scalekit_local.services import SERVICERS
    from scalekit_local.services.base import Servicer

    nested = []
    for path in sorted((PACKAGE / "services").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                nested += [f"{path.name}:{n.lineno} class {n.name} inside {node.name}()" for n in ast.walk(node)
                           if isinstance(n, ast.ClassDef)]
    assert not nested, "servicer classes must be module-level:\n" + "\n".join(nested)
    names = [cls.__name__ for cls in SERVICERS]
    assert len(set(names)) == len(names)
    for cls in SERVICERS:
        assert issubclass(cls, Servicer) and cls.add_to_server is not None, cls
    defined = {node.name for path in (PACKAGE / "services").glob("*.py")
               for node in ast.parse(path.read_text(encoding="utf-8")).body
               if isinstance(node, ast.ClassDef) and any(isinstance(b, ast.Attribute) and b.attr.endswith("Servicer")
                                                        for b in node.bases)}
    assert defined == set(names), f"servicer classes not in SERVICERS: {sorted(defined - set(names))}"


@pytest.fixture(scope="module")
def declared():
    """The attributes a Store and a Context declare."""
    import dataclasses

    from scalekit_local.domain.context import Context
    from scalekit_local.state.seed import load_seed
    from scalekit_local.state.store import Store

    return {"store": set(vars(Store(load_seed()))) | {n for n in dir(Store) if not n.startswith("__")},
            "ctx": {f.name for f in dataclasses.fields(Context)} | {n for n in dir(Context) if not n.startswith("__")}}


def test_state_is_declared_where_it_lives(declared):
    """Nothing adds an attribute to the store or the context from outside, and nothing asks whether one
    is there (getattr or hasattr on them): what they hold is declared in Store.__init__ and Context."""
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                holder = node.value.attr if isinstance(node.value, ast.Attribute) else \
                    node.value.id if isinstance(node.value, ast.Name) else None
                if holder in declared and node.attr not in declared[holder]:
                    problems.append(f"{path.relative_to(SCRIPTS.parent)}:{node.lineno} sets {holder}.{node.attr}, "
                                    f"which the {'Store' if holder == 'store' else 'Context'} does not declare")
            asks = isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("getattr", "hasattr") and len(node.args) >= 2
            if asks and ast.unparse(node.args[0]).split(".")[-1] in ("store", "ctx") \
                    and isinstance(node.args[1], ast.Constant):
                problems.append(f"{path.relative_to(SCRIPTS.parent)}:{node.lineno} {ast.unparse(node)}: "
                                "read a declared attribute instead")
    assert not problems, "\n".join(problems)
