"""Agents by worker group: each slice declares its agents and timers in its handlers module;
this joins them. Each group is its own consumer group and scales on its own."""

from __future__ import annotations

from agents.accounts import handlers as accounts
from agents.auth import handlers as auth
from agents.discovery import handlers as discovery
from agents.enrichment import handlers as enrichment
from agents.framework.runtime import AgentSpec, BroadcastSpec, TimerSpec
from agents.ingestion import handlers as ingestion
from agents.notifications import handlers as notifications
from agents.readmodel import handlers as readmodel
from agents.sona import handlers as sona
from agents.sync import handlers as sync
from agents.titles import handlers as titles

SLICES = (
    titles,
    readmodel,
    ingestion,
    enrichment,
    sync,
    discovery,
    sona,
    accounts,
    auth,
    notifications,
)
ALL_AGENTS: tuple[AgentSpec, ...] = tuple(spec for s in SLICES for spec in s.AGENTS)
ALL_TIMERS: tuple[TimerSpec, ...] = tuple(timer for s in SLICES for timer in s.TIMERS)
ALL_BROADCASTS: tuple[BroadcastSpec, ...] = tuple(
    b for s in SLICES for b in getattr(s, "BROADCASTS", ())
)


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


def broadcasts_for(names: list[str]) -> list[BroadcastSpec]:
    return [b for b in ALL_BROADCASTS if "all" in names or b.group in names]
