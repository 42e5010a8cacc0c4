"""Agents by worker group. Each group is its own consumer group and scales on its own."""

from __future__ import annotations

from agents.catalog.agents import AGENTS as CATALOG_AGENTS
from agents.catalog.agents import TIMERS as CATALOG_TIMERS
from agents.enrichment.agents import AGENTS as ENRICHMENT_AGENTS
from agents.enrichment.agents import TIMERS as ENRICHMENT_TIMERS
from agents.ingestion.agents import AGENTS as INGESTION_AGENTS
from agents.ingestion.agents import TIMERS as INGESTION_TIMERS
from agents.runtime import AgentSpec, TimerSpec

ALL_AGENTS: tuple[AgentSpec, ...] = (*CATALOG_AGENTS, *INGESTION_AGENTS, *ENRICHMENT_AGENTS)
ALL_TIMERS: tuple[TimerSpec, ...] = (*CATALOG_TIMERS, *INGESTION_TIMERS, *ENRICHMENT_TIMERS)


def groups() -> dict[str, list[AgentSpec]]:
    out: dict[str, list[AgentSpec]] = {}
    for spec in ALL_AGENTS:
        out.setdefault(spec.group, []).append(spec)
    return out


def agents_for(names: list[str]) -> list[AgentSpec]:
    """The agents of the named groups; `all` names every group."""
    known = groups()
    if "all" in names:
        return list(ALL_AGENTS)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise KeyError(
            f"unknown worker group(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}, all"
        )
    return [spec for name in names for spec in known[name]]


def timers_for(names: list[str]) -> list[TimerSpec]:
    return [t for t in ALL_TIMERS if "all" in names or t.group in names]
