"""The published contracts as files: what `mgw topics contracts DIR` writes and what
`mgw topics release` keeps in the repository (released schemas, consumer index, docs/TOPICS.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from topics.asyncapi import Document, build_asyncapi
from topics.compatibility import Problem, check, release, schema_text
from topics.consumers import INDEX_PATH, ConsumerIndex, index_json
from topics.json_schema import all_schemas
from topics.markdown import topics_markdown
from topics.page import topics_page
from topics.registry import TOPICS, TopicSpec

# docs/TOPICS.md of the checkout this package sits in (an installed copy has none).
CHECKOUT = Path(__file__).resolve().parents[1]
TOPICS_DOC = CHECKOUT / "docs" / "TOPICS.md"


def write_contracts(
    out_dir: Path,
    consumers: ConsumerIndex,
    prefix: str,
    bootstrap: str,
    extend: Callable[[Document], Document] | None = None,
) -> list[Path]:
    """asyncapi.json, index.html (the readable page), TOPICS.md and schemas/TOPIC/vN.json.
    `extend` adds what topics/ cannot know (the gateway's device socket)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    document = build_asyncapi(consumers, prefix=prefix, bootstrap=bootstrap)
    if extend is not None:
        document = extend(document)
    markdown = topics_markdown(consumers)
    files = {
        out_dir / "asyncapi.json": json.dumps(document, indent=2, ensure_ascii=False) + "\n",
        out_dir / "TOPICS.md": markdown,
        out_dir / "index.html": topics_page(markdown, "asyncapi.json"),
    }
    for (topic, version), schema in all_schemas(list(TOPICS)).items():
        files[out_dir / "schemas" / topic / f"v{version}.json"] = schema_text(schema)
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return sorted(files)


@dataclass(frozen=True)
class InStep:
    """How the committed contracts compare with the code."""

    problems: list[Problem]  # released schemas against the models
    stale: list[Path]  # committed generated files that differ from a fresh generation

    @property
    def breaking(self) -> list[Problem]:
        return [p for p in self.problems if p.breaking]

    @property
    def ok(self) -> bool:
        return not self.problems and not self.stale


def generated_files(consumers: ConsumerIndex) -> dict[Path, str]:
    """The committed files generated from the code besides the released schemas."""
    return {INDEX_PATH: index_json(consumers), TOPICS_DOC: topics_markdown(consumers)}


def in_step(
    released_root: Path, consumers: ConsumerIndex, topics: tuple[TopicSpec, ...] = TOPICS
) -> InStep:
    stale = [
        path
        for path, text in generated_files(consumers).items()
        if not path.exists() or path.read_text() != text
    ]
    return InStep(check(released_root, list(topics)), stale)


def release_all(
    released_root: Path, consumers: ConsumerIndex, topics: tuple[TopicSpec, ...] = TOPICS
) -> tuple[list[Path], list[Problem]]:
    """Write what changed compatibly; nothing at all when a change is breaking."""
    written, breaking = release(released_root, list(topics))
    if breaking:
        return [], breaking
    for path, text in generated_files(consumers).items():
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            written.append(path)
    return written, []
