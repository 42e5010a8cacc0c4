"""docker-compose.yml, the Dockerfile, the Prometheus scrape config and the Grafana dashboard,
checked statically: they parse, name every worker group, and chart only metrics we export."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from agents.groups import groups
from core.observability import metrics
from core.observability.dependencies import PROCESS_DEPENDENCIES

ROOT = Path(__file__).resolve().parents[2]
PLANNED = "planned"
PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
}


def load_yaml(relative: str) -> Any:
    return yaml.safe_load((ROOT / relative).read_text())


def compose() -> dict[str, Any]:
    data = load_yaml("docker-compose.yml")
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


def worker_services(services: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in services.items() if name.startswith("worker-")}


def exported_names() -> set[str]:
    """Every series name core/observability/metrics.py can expose."""
    names: set[str] = set()
    for obj in vars(metrics).values():
        if not isinstance(obj, MetricWrapperBase):
            continue
        base = obj._name  # counters keep their name without _total here
        if isinstance(obj, Counter):
            names |= {f"{base}_total", f"{base}_created"}
        elif isinstance(obj, Histogram):
            names |= {base, f"{base}_bucket", f"{base}_count", f"{base}_sum"}
        elif isinstance(obj, Gauge):
            names.add(base)
    return names


def metric_names(expr: str) -> set[str]:
    """Series names a PromQL expression reads (not its functions, labels or keywords)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)  # grouping labels
    found = set()
    for match in re.finditer(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", text):
        word = match.group(1)
        if word.lower() not in PROMQL_WORDS and not word.startswith("__"):
            found.add(word)
    return found


def test_metric_name_extraction() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, route) "
        '(rate(http_request_duration_seconds_bucket{job=~"$job"}[$__rate_interval])))'
    )
    assert metric_names(expr) == {"http_request_duration_seconds_bucket"}
    assert metric_names("sum(a_total) / clamp_min(sum(b_total), 1e-9)") == {"a_total", "b_total"}


def test_every_service_has_an_image_or_a_build() -> None:
    services = compose()["services"]
    for name, svc in services.items():
        assert svc.get("image") or svc.get("build"), f"{name} has neither image nor build"
    for needed in (
        "kafka",
        "postgres",
        "redis",
        "qdrant",
        "prometheus",
        "grafana",
        "init",
        "gateway",
    ):
        assert needed in services, needed
    assert services["kafka"]["image"].startswith("apache/kafka")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "mgw topics create" in " ".join(services["init"]["command"])
    assert "mgw db migrate" in " ".join(services["init"]["command"])
    assert (ROOT / "Dockerfile").read_text().startswith(("#", "FROM")), "Dockerfile"
    assert "FROM python:3.11-slim" in (ROOT / "Dockerfile").read_text()


def test_app_services_are_configured_for_the_stack() -> None:
    services = compose()["services"]
    for name in ("gateway", *worker_services(services)):
        svc = services[name]
        env = svc["environment"]
        assert env["KAFKA_BROKERS"] == "kafka:9092", name
        assert re.match(r"postgresql://[^@]+@postgres:5432/", env["DATABASE_URL"]), name
        assert env["REDIS_URL"].startswith("redis://redis:"), name
        assert env["QDRANT_URL"] == "http://qdrant:6333", name
        assert env["METRICS_PORT"] == "9090" and env["METRICS_HOST"] == "0.0.0.0", name
        assert svc["depends_on"]["init"]["condition"] == "service_completed_successfully", name


def test_each_worker_group_has_a_service() -> None:
    workers = worker_services(compose()["services"])
    known = set(groups())
    for group in known:
        svc = workers.get(f"worker-{group}")
        assert svc is not None, f"docker-compose.yml has no worker-{group}"
        assert svc["command"] == ["worker", group]
        assert PLANNED not in svc.get("profiles", []), f"worker-{group} exists: drop its profile"
    # Services for groups still to come are kept out of a default `up`.
    planned = {k.split(":", 1)[1] for k in PROCESS_DEPENDENCIES if k.startswith("worker:")}
    for name, svc in workers.items():
        group = name.removeprefix("worker-")
        assert svc["command"] == ["worker", group], name
        if group not in known:
            assert group in planned, f"{name}: no such worker group"
            assert svc.get("profiles") == [PLANNED], f"{name} would crash-loop: not implemented"


def scrape_targets() -> dict[str, dict[str, str]]:
    """Each target of prometheus.yml with the labels it adds to every series scraped there."""
    config = load_yaml("ops/prometheus/prometheus.yml")
    targets = {}
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            targets |= {target: static.get("labels", {}) for target in static["targets"]}
        # Found by DNS (every replica of a scaled service); labels set by relabelling.
        labels = {r["target_label"]: r["replacement"] for r in job.get("relabel_configs", [])}
        for lookup in job.get("dns_sd_configs", []):
            assert lookup["type"] == "A", job["job_name"]
            targets |= {f"{name}:{lookup['port']}": labels for name in lookup["names"]}
    return targets


def test_prometheus_scrapes_every_process() -> None:
    targets = scrape_targets()
    for name in ("gateway", *worker_services(compose()["services"])):
        assert f"{name}:9090" in targets, f"prometheus.yml does not scrape {name}"


def test_every_replica_of_a_scaled_service_is_scraped() -> None:
    # `docker compose up --scale worker-ingestion=3`: a static target resolves to one replica
    # at random per scrape; a DNS lookup of the service name lists them all.
    config = load_yaml("ops/prometheus/prometheus.yml")
    for job in config["scrape_configs"]:
        if job["job_name"] != "prometheus":
            assert "static_configs" not in job and job["dns_sd_configs"], job["job_name"]


def test_prometheus_scrapes_every_gateway_process() -> None:
    # Each process of a gateway container serves its own metrics, on METRICS_PORT + i
    # (gateway/resources.py): each must be a target, so the process count must be fixed.
    env = compose()["services"]["gateway"]["environment"]
    processes = int(env.get("GATEWAY_WORKERS", "0"))
    assert processes >= 1, "GATEWAY_WORKERS unset: one process per core, ports unknown"
    base = int(env["METRICS_PORT"])
    gateway = {t for t in scrape_targets() if t.startswith("gateway:")}
    assert gateway == {f"gateway:{base + i}" for i in range(processes)}


def test_target_labels_never_collide_with_the_labels_of_our_series() -> None:
    # A target label named like a label of a series renames the series' own label to
    # exported_LABEL, and alerts and panels that read it then show the target's value.
    ours = set()
    for obj in vars(metrics).values():
        if isinstance(obj, MetricWrapperBase):
            ours |= set(obj._labelnames)
    for target, labels in scrape_targets().items():
        assert not set(labels) & ours, f"{target}: {set(labels) & ours} collide"


def test_grafana_provisioning_points_at_prometheus_and_the_dashboards() -> None:
    datasources = load_yaml("ops/grafana/provisioning/datasources/prometheus.yml")
    (ds,) = datasources["datasources"]
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"
    providers = load_yaml("ops/grafana/provisioning/dashboards/media-gateway.yml")
    path = providers["providers"][0]["options"]["path"]
    mounts = compose()["services"]["grafana"]["volumes"]
    assert f"./ops/grafana/dashboards:{path}:ro" in mounts


def test_dashboard_charts_only_exported_metrics() -> None:
    dashboard = json.loads((ROOT / "ops/grafana/dashboards/media-gateway.json").read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 30
    ds = load_yaml("ops/grafana/provisioning/datasources/prometheus.yml")["datasources"][0]
    exported = exported_names()
    used: set[str] = set()
    ids = set()
    for panel in dashboard["panels"]:
        assert panel["id"] not in ids
        ids.add(panel["id"])
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == ds["uid"]
            names = metric_names(target["expr"])
            unknown = names - exported
            assert not unknown, f"panel {panel['title']!r} reads unknown metrics {unknown}"
            used |= names
    for wanted in (
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "mgw_events_consumed_total",
        "mgw_consumer_lag",
        "mgw_events_dead_lettered_total",
        "circuit_breaker_state",
    ):
        assert wanted in used, f"the dashboard does not chart {wanted}"
