"""Agents by worker group. Each group is its own consumer group and scales on its own."""

from __future__ import annotations

from agents.catalog.agents import AGENTS as CATALOG_AGENTS
from agents.runtime import AgentSpec

ALL_AGENTS: tuple[AgentSpec, ...] = (*CATALOG_AGENTS,)


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
