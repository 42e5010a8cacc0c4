"""`mgw ops k8s`: the worker groups' Kubernetes manifests, generated from the agents and the
topic catalog (ops/k8s/workers.yaml), so no partition count is typed twice.

Per worker group: a Deployment, a PodDisruptionBudget and a KEDA ScaledObject with one Kafka
trigger per consumed topic on the group's consumer-group lag. `maxReplicaCount` is the most
partitions among the group's topics: a consumer beyond that would get no partition of any of
them, stay unready (its readiness needs assigned partitions) and only slow every rebalance.
The hand-written rest (namespace, config, gateway, init job) sits beside it in ops/k8s/.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from topics.registry import TopicSpec

ops_app = typer.Typer(help="Production manifests generated from the code.", no_args_is_help=True)

ROOT = Path(__file__).resolve().parents[1]
WORKERS_PATH = ROOT / "ops" / "k8s" / "workers.yaml"
NAMESPACE = "media-gateway"
CONFIG_MAP = "mgw-config"
SECRET = "mgw-secrets"
IMAGE = "media-gateway:latest"  # kustomization.yaml `images:` pins the real one
METRICS_PORT = 9090
HOUR_MS = 60 * 60 * 1000
# Lag per replica that makes KEDA add one. Request/reply topics (kept an hour at most: someone
# is waiting for each answer) scale on a short queue; pipelines on a few seconds of work.
REQUEST_LAG_THRESHOLD = 20
PIPELINE_LAG_THRESHOLD = 1000


@dataclass(frozen=True)
class Resources:
    cpu: str
    memory: str
    memory_limit: str


DEFAULT_RESOURCES = Resources("250m", "384Mi", "1Gi")
# Groups that load the embedding model (~100 MB of weights, batches of 64 texts).
RESOURCES: Mapping[str, Resources] = {
    "enrichment": Resources("500m", "1Gi", "2Gi"),
    "discovery": Resources("500m", "1Gi", "2Gi"),
}


def consumer_group(prefix: str, group: str) -> str:
    # agents/framework/kafka/app.py consumer_group() for a worker running one group.
    return f"{prefix}-{group}"


def max_replicas(topics: Iterable[TopicSpec]) -> int:
    return max(spec.partitions for spec in topics)


def lag_threshold(spec: TopicSpec) -> int:
    request = spec.retention_ms is not None and spec.retention_ms <= HOUR_MS
    return REQUEST_LAG_THRESHOLD if request else PIPELINE_LAG_THRESHOLD


def group_topics() -> dict[str, list[TopicSpec]]:
    """Each worker group's topics, from the agents' declarations (agents/groups.py)."""
    from agents.groups import groups

    out: dict[str, list[TopicSpec]] = {}
    for group, specs in sorted(groups().items()):
        seen: dict[str, TopicSpec] = {}
        for agent in specs:
            seen.setdefault(agent.topic.name, agent.topic)
        out[group] = sorted(seen.values(), key=lambda s: s.name)
    return out


def _labels(group: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "media-gateway",
        "app.kubernetes.io/component": "worker",
        "media-gateway/group": group,
    }


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "metrics"},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def deployment(group: str) -> dict[str, Any]:
    res = RESOURCES.get(group, DEFAULT_RESOURCES)
    name = f"worker-{group}"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": _labels(group)},
        "spec": {
            # No `replicas`: the ScaledObject's HPA owns it; an apply must not reset it.
            "selector": {"matchLabels": _labels(group)},
            # Never a surplus pod: at maxReplicaCount it would get no partition and never
            # become ready, and the rollout would wait for it forever.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
            },
            "template": {
                "metadata": {
                    "labels": _labels(group),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(METRICS_PORT),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    # Faust stops its agents, the last batches finish and their offsets are
                    # committed before the pod goes (docs/OPERATIONS.md, draining a worker).
                    "terminationGracePeriodSeconds": 60,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "worker",
                            "image": IMAGE,
                            "args": ["worker", group],
                            "envFrom": [
                                {"configMapRef": {"name": CONFIG_MAP}},
                                {"secretRef": {"name": SECRET}},
                            ],
                            "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
                            "startupProbe": _probe("/health/live", 2, 30),
                            "livenessProbe": _probe("/health/live", 10, 3),
                            "readinessProbe": _probe("/health/ready", 10, 3),
                            "resources": {
                                "requests": {"cpu": res.cpu, "memory": res.memory},
                                "limits": {"memory": res.memory_limit},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                        }
                    ],
                    # Faust's (memory-store) data dir and Python's temp files.
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
                },
            },
        },
    }


def disruption_budget(group: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": f"worker-{group}", "namespace": NAMESPACE, "labels": _labels(group)},
        # One at a time: a node drain moves the group's partitions in steps, never all at once;
        # with a single replica the drain still proceeds (the group pauses, lag grows, resumes).
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _labels(group)}},
    }


def scaled_object(group: str, topics: list[TopicSpec], prefix: str) -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": f"worker-{group}", "namespace": NAMESPACE, "labels": _labels(group)},
        "spec": {
            "scaleTargetRef": {"name": f"worker-{group}"},
            # Never zero: timers (sweeps, expiry checks) run in the group's workers, and a
            # request/reply agent must answer within a second.
            "minReplicaCount": 1,
            "maxReplicaCount": max_replicas(topics),
            "pollingInterval": 15,
            "cooldownPeriod": 300,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    # Every change of replicas is a rebalance that pauses the whole group:
                    # scale up quickly, down slowly and one pod at a time.
                    "behavior": {
                        "scaleUp": {
                            "stabilizationWindowSeconds": 30,
                            "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}],
                        },
                        "scaleDown": {
                            "stabilizationWindowSeconds": 300,
                            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}],
                        },
                    }
                }
            },
            "triggers": [
                {
                    "type": "kafka",
                    "name": spec.name.replace(".", "-").replace("_", "-"),
                    "metadata": {
                        # Resolved from the worker's own environment (the ConfigMap).
                        "bootstrapServersFromEnv": "KAFKA_BROKERS",
                        "consumerGroup": consumer_group(prefix, group),
                        "topic": spec.full_name(prefix),
                        "lagThreshold": str(lag_threshold(spec)),
                        "offsetResetPolicy": "earliest",
                        "allowIdleConsumers": "false",
                        "scaleToZeroOnInvalidOffset": "false",
                    },
                }
                for spec in topics
            ],
        },
    }


def worker_manifests(prefix: str, by_group: Mapping[str, list[TopicSpec]]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for group, topics in sorted(by_group.items()):
        docs += [deployment(group), disruption_budget(group), scaled_object(group, topics, prefix)]
    return docs


def render(docs: list[dict[str, Any]], prefix: str) -> str:
    import yaml  # a dev dependency: this command is run from a checkout

    header = (
        "# Generated by `mgw ops k8s` from agents/groups.py and topics/registry.py: do not edit.\n"
        f"# Topic prefix {prefix!r}: KAFKA_TOPIC_PREFIX in config.yaml must match (tests/ops).\n"
        "# Per worker group: Deployment, PodDisruptionBudget, KEDA ScaledObject whose\n"
        "# maxReplicaCount is the most partitions among the group's topics.\n"
    )
    body = yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False, width=100)
    return header + body


@ops_app.command("k8s")
def k8s_command(
    prefix: Annotated[str, typer.Option(help="KAFKA_TOPIC_PREFIX of the deployment.")] = "mgw",
    out_file: Annotated[Path, typer.Option("--out", help="Where to write.")] = WORKERS_PATH,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 if the file differs instead of writing.")
    ] = False,
) -> None:
    """Write the worker groups' Deployments, PDBs and KEDA ScaledObjects."""
    from cli.console import out

    text = render(worker_manifests(prefix, group_topics()), prefix)
    current = out_file.read_text() if out_file.exists() else None
    if check:
        if current != text:
            # The command that brings it in step is this one without --check.
            again = "mgw ops k8s"
            if prefix != "mgw":
                again += f" --prefix {prefix}"
            if out_file != WORKERS_PATH:
                again += f" --out {out_file}"
            out.print(f"{out_file} is out of step: run `{again}`")
            raise typer.Exit(1)
        out.print(f"{out_file} in step")
        return
    if current == text:
        out.print(f"{out_file} already in step")
        return
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(text)
    out.print(f"written {out_file}")
