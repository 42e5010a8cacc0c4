"""docs/ARCHITECTURE.md's two paths count what they say they count.

Each step of a path names its counted files before "Rules:" and the pure modules it calls
after it. A counted file must reach an I/O library and a rule must reach none (the test
tests/unit/test_import_structure.py applies to a slice's rule modules); the step's [n] and the
heading's total must be the number of counted files. What runs on the way is read by people:
this keeps the arithmetic and the classification from drifting as modules move.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.unit.test_import_structure import (
    IO_LIBRARIES,
    external_imports,
    module_name,
    modules,
    reached_from,
)

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "ARCHITECTURE.md"
HEADING = re.compile(r"^## (A .+) \((\d+) files\)$", re.MULTILINE)
STEP = re.compile(r"^\d+\. .*?\[(\d+)\]", re.MULTILINE)
PY_PATH = re.compile(r"`([a-z_][\w/]*\.py)`")


@dataclass
class Step:
    text: str
    claimed: int
    counted: list[str]
    rules: list[str]


@dataclass
class Walk:
    title: str
    claimed: int
    steps: list[Step]


def parse(text: str) -> list[Walk]:
    heads = list(HEADING.finditer(text))
    paths = []
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else text.index("\nCounted:", head.end())
        body = text[head.end() : end]
        starts = list(STEP.finditer(body))
        steps = []
        for j, start in enumerate(starts):
            chunk = body[start.start() : starts[j + 1].start() if j + 1 < len(starts) else None]
            counted_part, _, rules_part = chunk.partition("Rules:")
            steps.append(
                Step(
                    chunk,
                    int(start.group(1)),
                    list(dict.fromkeys(PY_PATH.findall(counted_part))),
                    list(dict.fromkeys(PY_PATH.findall(rules_part))),
                )
            )
        paths.append(Walk(head.group(1), int(head.group(2)), steps))
    return paths


def reaches_io(path: str) -> bool:
    name = module_name(ROOT / path)
    return any(
        lib in IO_LIBRARIES or lib.split(".")[0] in IO_LIBRARIES
        for via in reached_from(name)
        for lib in external_imports(via)
    )


PATHS = parse(PAGE.read_text())


def test_the_page_has_both_paths() -> None:
    assert [p.title.split(":")[0] for p in PATHS] == ["A catalog record", "A remote command"]
    assert all(len(p.steps) == 5 for p in PATHS)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.title.split(":")[0])
def test_counts_add_up(path: Walk) -> None:
    counted: list[str] = []
    for step in path.steps:
        assert step.claimed == len(step.counted), step.text
        counted += step.counted
    assert len(counted) == len(set(counted)), "a file is counted twice on one path"
    assert path.claimed == len(counted)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.title.split(":")[0])
def test_counted_files_do_io_and_rules_do_not(path: Walk) -> None:
    known = {str(p.relative_to(ROOT)) for p in modules().values()}
    for step in path.steps:
        for file in [*step.counted, *step.rules]:
            assert file in known, f"{file} is not a module of ours"
        pure_counted = [f for f in step.counted if not reaches_io(f)]
        impure_rules = [f for f in step.rules if reaches_io(f)]
        assert pure_counted == [], f"counted but reaches no I/O (a rule): {step.text}"
        assert impure_rules == [], f"named a rule but reaches I/O (count it): {step.text}"


def test_the_check_tells_the_two_apart() -> None:
    # If either failed, the test above would pass whatever the page says.
    assert reaches_io("agents/titles/store.py")
    assert not reaches_io("agents/titles/versions.py")
