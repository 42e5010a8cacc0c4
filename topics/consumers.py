"""Who consumes a topic, as the published contracts tell it.

The agents declare what they consume (agents/*/handlers.py, joined in agents/groups.py), and
topics/ may not import agents; so `mgw topics release` derives this index from those
declarations (cli/topic_commands.py) and commits it beside the released schemas, where the
gateway, which may not import agents either, reads it. A test keeps the committed index equal
to a fresh one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

# Beside the released schemas (topics/released/), which the repository keeps for the same
# subscribers; shipped as package data, so an installed gateway finds it.
INDEX_PATH = Path(__file__).resolve().parent / "consumers.json"


@dataclass(frozen=True, order=True)
class Consumer:
    group: str  # the worker group (`mgw worker GROUP`, one Deployment each)
    agent: str
    description: str = ""

    def consumer_group(self, prefix: str) -> str:
        # Mirrors agents/framework/kafka/app.py consumer_group() for a worker running one group.
        return f"{prefix}-{self.group}"


ConsumerIndex = Mapping[str, Sequence[Consumer]]


def index_json(index: ConsumerIndex) -> str:
    """The committed form: topic name -> consumers, sorted, one stable text."""
    data = {
        topic: [asdict(c) for c in sorted(consumers)] for topic, consumers in sorted(index.items())
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def load_index(path: Path = INDEX_PATH) -> dict[str, list[Consumer]]:
    """The committed index; empty (with nobody listed as consumer) when there is none."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {topic: [Consumer(**c) for c in consumers] for topic, consumers in data.items()}
