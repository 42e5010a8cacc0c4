"""ops/k8s, checked statically: every manifest validates against the Kubernetes schemas (strict:
an unknown field fails) or KEDA's ScaledObject schema, the generated workers.yaml is the one the
code makes, and each worker group scales on its consumer-group lag up to its topics' partitions.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from cloudcoil.models.keda.v1alpha1 import ScaledObject

from agents.framework.kafka.app import consumer_group
from agents.groups import groups
from cli.k8s_manifests import WORKERS_PATH, group_topics, render, worker_manifests
from core.config import _SECTIONS, KafkaSettings, Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "ops" / "k8s"
KUBERNETES_VERSION = "1.31.0"  # the oldest minor still supported upstream when written
Manifest = dict[str, Any]


def load(name: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


@cache
def kustomization() -> Manifest:
    data = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert isinstance(data, dict)
    return data


def manifests() -> list[Manifest]:
    return [doc for name in kustomization()["resources"] for doc in load(name)]


def by_kind(kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests() if m["kind"] == kind}


def closed(node: Any) -> Any:
    """A schema copy in which an object with declared properties accepts no others."""
    if isinstance(node, dict):
        out = {k: closed(v) for k, v in node.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [closed(v) for v in node]
    return node


@cache
def scaled_object_validator() -> jsonschema.Draft202012Validator:
    # KEDA's CRD schema as its typed models carry it (cloudcoil.models.keda, generated from
    # KEDA's CRDs); closed like kubeconform's strict mode, so a misspelt field fails.
    schema = closed(ScaledObject.model_json_schema(by_alias=True, mode="validation"))
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
    return jsonschema.Draft202012Validator(schema)


def validate(manifest: Manifest) -> None:
    if manifest["kind"] == "ScaledObject":
        errors = list(scaled_object_validator().iter_errors(manifest))
        if errors:
            raise AssertionError("; ".join(f"{list(e.path)}: {e.message}" for e in errors))
        return
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_every_manifest_validates_against_its_schema() -> None:
    listed = set(kustomization()["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk, "kustomization.yaml must list every manifest in ops/k8s"
    kinds = set()
    for manifest in manifests():
        validate(manifest)
        kinds.add(manifest["kind"])
        if manifest["kind"] != "Namespace":
            assert manifest["metadata"]["namespace"] == kustomization()["namespace"]
    assert {
        "Namespace",
        "ConfigMap",
        "Secret",
        "Job",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "ScaledObject",
    } <= kinds


def test_the_validation_rejects_broken_manifests() -> None:
    """The checks above can fail: a misspelt field, a wrong type, a missing required field."""
    deployment = copy.deepcopy(by_kind("Deployment")["gateway"])
    deployment["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)
    scaled = next(iter(by_kind("ScaledObject").values()))
    for breakage in (
        lambda s: s["spec"].update(maxReplicaCount="eight"),
        lambda s: s["spec"].update(maxReplicas=4),
        lambda s: s["spec"].pop("scaleTargetRef"),
        lambda s: s["spec"]["triggers"][0].pop("type"),
        lambda s: s.update(apiVersion="keda.sh/v2"),
    ):
        broken = copy.deepcopy(scaled)
        breakage(broken)
        with pytest.raises(AssertionError):
            validate(broken)


def test_workers_yaml_is_generated_from_the_code() -> None:
    prefix = kustomization_prefix()
    fresh = render(worker_manifests(prefix, group_topics()), prefix)
    assert WORKERS_PATH.read_text() == fresh, "ops/k8s/workers.yaml is stale: run `mgw ops k8s`"


def kustomization_prefix() -> str:
    (config,) = [m for m in load("config.yaml") if m["kind"] == "ConfigMap"]
    return str(config["data"]["KAFKA_TOPIC_PREFIX"])


def test_each_worker_group_scales_on_its_lag_up_to_its_partitions() -> None:
    prefix = kustomization_prefix()
    kafka = KafkaSettings.model_construct(topic_prefix=prefix)
    settings = Settings.model_construct(kafka=kafka)
    deployments, budgets, scaled = (
        by_kind("Deployment"),
        by_kind("PodDisruptionBudget"),
        by_kind("ScaledObject"),
    )
    known = groups()
    assert set(scaled) == {f"worker-{g}" for g in known}
    for group, agents in known.items():
        name = f"worker-{group}"
        topics = {agent.topic.full_name(prefix): agent.topic.partitions for agent in agents}
        spec = scaled[name]["spec"]
        assert spec["scaleTargetRef"]["name"] == name and name in deployments
        # The catalog's partitions, not a number typed in the manifest.
        assert spec["maxReplicaCount"] == max(topics.values()), name
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        triggers = spec["triggers"]
        assert {t["metadata"]["topic"] for t in triggers} == set(topics), name
        for trigger in triggers:
            meta = trigger["metadata"]
            assert trigger["type"] == "kafka"
            assert meta["consumerGroup"] == consumer_group(settings, [group])
            assert meta["bootstrapServersFromEnv"] == "KAFKA_BROKERS"
            assert int(meta["lagThreshold"]) > 0
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == ["worker", group]
        assert "replicas" not in deployments[name]["spec"], "KEDA owns the replica count"
        pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        selector = budgets[name]["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod_labels.items(), f"{name}: the PDB selects no pod"


def test_processes_take_config_from_one_config_map_and_secret_and_probe_health() -> None:
    config = by_kind("ConfigMap")["mgw-config"]["data"]
    secret = by_kind("Secret")["mgw-secrets"]["stringData"]
    variables = {
        section.env_name(field) for section in _SECTIONS.values() for field in section.model_fields
    }
    for name in [*config, *secret]:
        assert name in variables, f"{name} is no variable of core/config.py"
    # Secrets stay out of the ConfigMap, and the committed Secret holds no value.
    assert not {"DATABASE_URL", "REDIS_URL", "AUTH_JWT_SECRET"} & set(config)
    assert all(value == "" for value in secret.values())
    pods = [*by_kind("Deployment").values(), *by_kind("Job").values()]
    for owner in pods:
        pod = owner["spec"]["template"]["spec"]
        for container in pod["containers"]:
            refs = {
                (next(iter(ref)), next(iter(ref.values()))["name"]) for ref in container["envFrom"]
            }
            assert refs == {("configMapRef", "mgw-config"), ("secretRef", "mgw-secrets")}
            assert container["resources"]["requests"]["cpu"]
            assert container["resources"]["requests"]["memory"]
            if owner["kind"] == "Job":
                assert "mgw topics create" in " ".join(container["command"])
                assert "mgw db migrate" in " ".join(container["command"])
                continue
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            for probe, path in (
                ("livenessProbe", "/health/live"),
                ("readinessProbe", "/health/ready"),
            ):
                get = container[probe]["httpGet"]
                assert get["path"] == path and get["port"] in ports, owner["metadata"]["name"]
            assert ports.get("metrics") == int(config["METRICS_PORT"])
    gateway = by_kind("Deployment")["gateway"]["spec"]["template"]["spec"]["containers"][0]
    http = {p["name"]: p["containerPort"] for p in gateway["ports"]}["http"]
    assert http == int(config["GATEWAY_PORT"])
    service = by_kind("Service")["gateway"]["spec"]
    labels = by_kind("Deployment")["gateway"]["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= labels.items()
    assert by_kind("PodDisruptionBudget")["gateway"]["spec"]["selector"]["matchLabels"].items() <= (
        labels.items()
    )


def test_check_names_the_command_that_brings_the_file_in_step(tmp_path: Path) -> None:
    """Found by hand: `mgw ops k8s --check --prefix other` said "run `mgw ops k8s`", which
    writes the manifests of the prefix mgw."""
    from typer.testing import CliRunner

    from cli.k8s_manifests import ops_app

    target = tmp_path / "workers.yaml"
    result = CliRunner().invoke(ops_app, ["--check", "--prefix", "other", "--out", str(target)])
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    assert f"run `mgw ops k8s --prefix other --out {target}`" in said, said
