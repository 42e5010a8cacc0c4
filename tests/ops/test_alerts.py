"""ops/prometheus/alerts.yml, checked statically: Prometheus and docker-compose load it, every
alert reads only series we export, names a Grafana panel that exists and a runbook section of
docs/OPERATIONS.md that exists, and any topic it names is in the catalog."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.ops.test_ops_files import ROOT, compose, exported_names, load_yaml, metric_names
from topics.registry import TOPICS

# Prometheus' own series, present for every scrape target.
PROMETHEUS_SERIES = {"up"}
REQUIRED_ALERTS = {
    "MgwConsumerLagHigh",  # lag
    "MgwDeadLetters",  # DLQ growth
    "MgwCircuitBreakerOpen",  # breakers open
}


def rules() -> list[dict[str, Any]]:
    data = load_yaml("ops/prometheus/alerts.yml")
    return [rule for group in data["groups"] for rule in group["rules"]]


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the headings of a Markdown file."""
    out = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            text = line.lstrip("#").strip().lower().replace("`", "")
            out.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return out


def test_prometheus_and_compose_load_the_rules() -> None:
    config = load_yaml("ops/prometheus/prometheus.yml")
    assert "/etc/prometheus/alerts.yml" in config["rule_files"]
    mounts = compose()["services"]["prometheus"]["volumes"]
    assert "./ops/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts


def test_every_alert_reads_exported_series_and_points_at_a_panel_and_a_runbook() -> None:
    dashboard = json.loads((ROOT / "ops/grafana/dashboards/media-gateway.json").read_text())
    panels = {p["title"] for p in dashboard["panels"] if p.get("type") != "row"}
    runbooks = anchors((ROOT / "docs/OPERATIONS.md").read_text())
    exported = exported_names() | PROMETHEUS_SERIES
    topics = {spec.name for spec in TOPICS}
    names = set()
    for rule in rules():
        name = rule["alert"]
        assert name not in names, f"{name} twice"
        names.add(name)
        unknown = metric_names(rule["expr"]) - exported
        assert not unknown, f"{name} reads series nobody exports: {unknown}"
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        notes = rule["annotations"]
        assert notes["summary"] and notes["description"], name
        assert notes["dashboard_panel"] in panels, f"{name}: no panel {notes['dashboard_panel']!r}"
        page, _, anchor = notes["runbook"].partition("#")
        assert page == "docs/OPERATIONS.md" and anchor == name.lower(), name
        assert anchor in runbooks, f"docs/OPERATIONS.md has no section for {name}"
        for match in re.finditer(r'topic=~?"([^"]+)"', rule["expr"]):
            for topic in match.group(1).split("|"):
                assert topic in topics, f"{name} names {topic}, which is not in the catalog"
    assert names >= REQUIRED_ALERTS


def test_the_checks_catch_an_unknown_series() -> None:
    assert metric_names("sum by (group) (mgw_consumer_lagg) > 10") - exported_names() == {
        "mgw_consumer_lagg"
    }
