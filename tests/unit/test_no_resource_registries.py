"""No module of agents/ keeps a registry of resources of its own: what a slice opens per worker
is declared as a `Resource` and held by the agent context (agents/framework/resources.py).

A registry is a module-level name that functions write to after import: a subscript store
(`_SINKS[redis] = sink`), a mutating call (`_CACHE.move_to_end(k)`), a `global` rebinding, or
any of these through a local alias (`cache = _CACHE; cache[k] = v`). Read from the source (ast).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MUTATING_METHODS = frozenset(
    {
        "append",
        "appendleft",
        "add",
        "clear",
        "discard",
        "extend",
        "insert",
        "move_to_end",
        "pop",
        "popitem",
        "remove",
        "setdefault",
        "update",
    }
)
# (module, name): why this process-wide state is not a slice's resource.
ALLOWED = {
    # Read-only weights (~90 MB) shared by every embedder of the process; copying them per
    # worker context would only multiply memory in tests that run several contexts.
    ("agents.adapters.embeddings.local", "_models"): "immutable model weights",
    # The native BLAS library's thread pools are process state whatever holds the controller.
    ("agents.adapters.embeddings.local", "_blas"): "process-wide native thread pools",
    # Faust's consumer class is patched for the whole process (one worker per process); these
    # hold what the patch was configured with.
    ("agents.framework.kafka.fetch_wait", "_wait_ms"): "configures a process-wide patch",
    ("agents.framework.kafka.fetch_wait", "_gate"): "configures a process-wide patch",
    ("agents.framework.kafka.offset_guard", "_guard"): "configures a process-wide patch",
    # Label values of a Prometheus gauge, whose registry is process-wide by design.
    ("agents.framework.quarantine", "_GAUGED"): "labels of a process-wide metric",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _module_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _written_in(fn: ast.FunctionDef | ast.AsyncFunctionDef, module_names: set[str]) -> set[str]:
    """The module-level names `fn` writes to, directly or through a local alias."""
    aliases = {name: name for name in module_names}
    written: set[str] = set()
    nodes = sorted(
        ast.walk(fn), key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0))
    )
    for node in nodes:
        if isinstance(node, ast.Global):
            written.update(n for n in node.names if n in module_names)
        elif isinstance(node, ast.Assign):
            if isinstance(node.value, ast.Name) and node.value.id in aliases:
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        aliases[target.id] = aliases[node.value.id]
            for target in node.targets:
                if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                    if target.value.id in aliases:
                        written.add(aliases[target.value.id])
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                    if target.value.id in aliases:
                        written.add(aliases[target.value.id])
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if (
                isinstance(owner, ast.Name)
                and owner.id in aliases
                and node.func.attr in MUTATING_METHODS
            ):
                written.add(aliases[owner.id])
    return written


def registries_in(source: str) -> set[str]:
    tree = ast.parse(source)
    names = _module_names(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found |= _written_in(node, names)
    return found


def test_no_module_of_agents_keeps_a_registry_of_its_own() -> None:
    found = {
        (module_name(path), name)
        for path in (ROOT / "agents").rglob("*.py")
        for name in registries_in(path.read_text())
    }
    assert sorted(found - set(ALLOWED)) == []
    # An allowance that no longer matches anything is dropped, not kept as a blank cheque.
    assert sorted(set(ALLOWED) - found) == []


def test_the_checker_finds_each_registry_the_slices_once_kept() -> None:
    # The four shapes issue 22 removed: keyed by id(pool), by topic prefix, weakly by client,
    # and a module global mutated through a local alias.
    by_pool = "_P: dict = {}\ndef get(c):\n    _P[id(c.pool)] = 1\n"
    by_prefix = "_P = {}\ndef get(c):\n    found = _P[c.prefix] = 1\n    return found\n"
    weak = "import weakref\n_S = weakref.WeakKeyDictionary()\ndef f(r):\n    _S.setdefault(r, 1)\n"
    aliased = "_C = {}\nasync def load(k):\n    cache = _C\n    cache.move_to_end(k)\n"
    rebound = "_X = None\ndef f():\n    global _X\n    _X = 1\n"
    assert registries_in(by_pool) == {"_P"}
    assert registries_in(by_prefix) == {"_P"}
    assert registries_in(weak) == {"_S"}
    assert registries_in(aliased) == {"_C"}
    assert registries_in(rebound) == {"_X"}
    # A declaration a function only reads is not a registry.
    assert registries_in("AGENTS = [1]\ndef f():\n    return list(AGENTS)\n") == set()
