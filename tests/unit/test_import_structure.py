"""The package structure holds: layers import in one direction only, no package has an import
cycle, and the modules of a domain slice that are not its handlers or store do no I/O.

Imports are read from the source (ast), lazy ones inside functions included, so a cycle
broken only by a function-level import still counts; `if TYPE_CHECKING:` blocks do not count.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "core",
    "schemas",
    "topics",
    "contracts",
    "agents",
    "gateway",
    "cli",
    "devtools",
    "assistant",
)
# What pure modules must not reach, even through other modules of the project.
IO_LIBRARIES = frozenset(
    {
        "asyncpg",
        "redis",
        "aiokafka",
        "faust",
        "httpx",
        "aiohttp",
        "requests",
        "openai",
        "pubnub",
        "qdrant_client",
        "qdrant_edge",
        "socket",
        "urllib.request",
    }
)
# In a domain slice (agents/<slice>/), these files do I/O; every other module is pure.
IO_MODULE_NAMES = ("handlers", "store")
IO_MODULE_SUFFIXES = ("_store", "_client")
NOT_SLICES = ("framework", "adapters", "migrations")
# (importer, imported): what each layer may not import.
FORBIDDEN_LAYERS = [
    ("core", "agents"),
    ("core", "gateway"),
    ("core", "cli"),
    ("schemas", "agents"),
    ("schemas", "gateway"),
    ("schemas", "core"),
    ("topics", "agents"),
    ("topics", "gateway"),
    ("contracts", "agents"),
    ("contracts", "gateway"),
    ("agents", "gateway"),
    ("gateway", "agents"),
    ("agents.framework", "agents.groups"),
    # The MCP server is a client of the gateway's HTTP API: it shares no code with the gateway
    # or the agents, and none of what reads their stores (docs/MCP.md).
    ("assistant", "gateway"),
    ("assistant", "agents"),
    ("assistant", "contracts"),
    ("core", "assistant"),
    ("agents", "assistant"),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            found[module_name(path)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


@cache
def imports_of(name: str) -> frozenset[str]:
    """Every module name this module imports (absolute, as written or resolved)."""
    path = modules()[name]
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # `from pkg import module` imports the module too.
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return frozenset(found)


def internal_imports(name: str) -> set[str]:
    known = modules()
    return {m for m in imports_of(name) if m in known and m != name}


def external_imports(name: str) -> set[str]:
    known = modules()
    return {m for m in imports_of(name) if m.split(".")[0] not in PACKAGES and m not in known}


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(f"{prefix}.")


def test_layers_import_in_one_direction() -> None:
    offences = [
        f"{importer} imports {imported}"
        for importer in modules()
        for imported in internal_imports(importer)
        for low, high in FORBIDDEN_LAYERS
        if _within(importer, low) and _within(imported, high)
    ]
    assert offences == []


def _cycle_in(package: str) -> list[str] | None:
    members = [m for m in modules() if _within(m, package)]
    graph = {m: sorted(i for i in internal_imports(m) if _within(i, package)) for m in members}
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for member in sorted(members):
        if member not in state and (found := visit(member)):
            return found
    return None


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle_inside_a_package(package: str) -> None:
    cycle = _cycle_in(package)
    assert cycle is None, " -> ".join(cycle or [])


def pure_modules() -> list[str]:
    out = []
    for name in modules():
        parts = name.split(".")
        if len(parts) < 3 or parts[0] != "agents" or parts[1] in NOT_SLICES:
            continue
        leaf = parts[-1]
        if leaf in IO_MODULE_NAMES or leaf.endswith(IO_MODULE_SUFFIXES):
            continue
        out.append(name)
    return sorted(out)


def reached_from(name: str) -> set[str]:
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo.extend(internal_imports(current))
    return seen


def test_the_slices_have_pure_modules_to_check() -> None:
    # The rule below must have something to bite on: the ingestion rules are pure modules.
    assert {"agents.ingestion.resolution", "agents.ingestion.pipeline"} <= set(pure_modules())


@pytest.mark.parametrize("name", pure_modules())
def test_pure_modules_reach_no_io(name: str) -> None:
    reached = reached_from(name)
    io_modules = sorted(
        m
        for m in reached
        if m.split(".")[-1] in IO_MODULE_NAMES or m.split(".")[-1].endswith(IO_MODULE_SUFFIXES)
    )
    libraries = sorted(
        f"{m} (via {via})"
        for via in reached
        for m in external_imports(via)
        if m in IO_LIBRARIES or m.split(".")[0] in IO_LIBRARIES
    )
    assert io_modules == [], f"{name} reaches a store or handler"
    assert libraries == [], f"{name} reaches an I/O library"


def test_the_mcp_server_reaches_no_store() -> None:
    # Only HTTP: whatever the assistant package reaches, no database, cache or broker client.
    stores = {"asyncpg", "redis", "aiokafka", "faust", "qdrant_client", "qdrant_edge"}
    members = [m for m in modules() if _within(m, "assistant")]
    assert len(members) >= 5
    reached = sorted(
        f"{lib} (via {via})"
        for name in members
        for via in reached_from(name)
        for lib in external_imports(via)
        if lib.split(".")[0] in stores
    )
    assert reached == []


def test_the_checker_sees_a_known_io_import() -> None:
    # A store reaches asyncpg: if this failed, the purity test above would pass vacuously.
    assert "asyncpg" in external_imports("agents.ingestion.store")
    assert "agents.titles.names" in internal_imports("agents.ingestion.store")
