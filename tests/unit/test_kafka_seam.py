"""One seam to Kafka: only the worker framework's Kafka adapter (agents/framework/kafka/) and the
client side (core/kafka.py: the gateway's publisher, the topic tools and `mgw` commands build
their clients there) import aiokafka or Faust. Every other module produces through
core/publisher.py and consumes through an agent or a broadcast the framework runs.

Imports are read from the source (ast) by the layering test's reader, lazy ones included.
"""

from __future__ import annotations

import pytest

from tests.unit.test_import_structure import ROOT, imports_of, module_name

KAFKA_LIBRARIES = ("aiokafka", "faust")
SEAM = ("agents.framework.kafka", "core.kafka")
# Places outside the seam allowed to import the libraries, and why.
ALLOWED = {
    # The benchmarks' baselines measure the broker and the libraries without our code in the
    # way (a raw producer beside the gateway, a bare Faust agent beside the pipeline), so they
    # must not go through the seam they are the yardstick of.
    "devtools.bench": "baselines that bypass our code on purpose",
}
# tests/ is not scanned (the layering reader covers the project's packages only): tests check
# what reached the broker with a reader independent of the code under test, and drive
# consumers directly to set up the faults the offset guard must catch.


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(f"{prefix}.")


def kafka_imports(name: str) -> list[str]:
    return sorted(m for m in imports_of(name) if m.split(".")[0] in KAFKA_LIBRARIES)


def project_modules() -> dict[str, list[str]]:
    from tests.unit.test_import_structure import modules

    found = {name: kafka_imports(name) for name in modules()}
    return {name: libs for name, libs in found.items() if libs}


def test_only_the_seam_imports_kafka_libraries() -> None:
    outside = {
        name: libs
        for name, libs in project_modules().items()
        if not any(_within(name, place) for place in (*SEAM, *ALLOWED))
    }
    assert outside == {}


@pytest.mark.parametrize("place", SEAM)
def test_each_side_of_the_seam_uses_the_libraries(place: str) -> None:
    # Both sides exist and do import them: if one stopped, the test above would still pass but
    # this module's description would be false.
    assert any(_within(name, place) for name in project_modules())


def test_the_reader_sees_a_kafka_import() -> None:
    # The framework's broadcast reader imports aiokafka: if this failed, the checks above
    # would pass vacuously.
    path = ROOT / "agents" / "framework" / "kafka" / "broadcast.py"
    assert "aiokafka" in kafka_imports(module_name(path))
