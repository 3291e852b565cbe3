"""Kubernetes manifests (option `kubernetes`), validated against schemas.

Core resources: the Kubernetes JSON schemas shipped in the kubernetes-validate wheel, strict
(unknown fields are errors). KEDA's ScaledObject and the Prometheus Operator's PodMonitor and
PrometheusRule: JSON schemas derived at test time from the cloudcoil-models-keda and
cloudcoil-models-prometheus-operator wheels (Pydantic models generated from the CRDs), made
strict the same way; plus the keys each KEDA scaler needs (trigger metadata is a free string map).
"""

from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
from cloudcoil.models.keda.v1alpha1 import ScaledObject
from cloudcoil.models.prometheus_operator.v1 import PodMonitor, PrometheusRule

from .conftest import RenderFn
from .helpers import combo_id, ops_combinations, yaml_documents

COMBOS = ops_combinations()
K8S_VERSION = kubernetes_validate.latest_version()
NOT_APPLIED_BY_KUSTOMIZE = {"secret.example.yaml", "migrate-job.yaml", "kustomization.yaml"}


def strict(schema: Any) -> Any:
    """Forbids properties a schema does not name, everywhere (Kubernetes rejects them too)."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


def go_regexes(schema: Any) -> Any:
    """Go's `^(?i)...` patterns (in the CRDs) as Python accepts them: `(?i)^...`."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "pattern" and isinstance(value, str) and value.startswith("^(?i)"):
                schema[key] = "(?i)^" + value.removeprefix("^(?i)")
            else:
                go_regexes(value)
    elif isinstance(schema, list):
        for value in schema:
            go_regexes(value)
    return schema


def crd_schema(model: Any) -> dict[str, Any]:
    """A strict JSON schema of a custom resource, from its cloudcoil model."""
    schema: dict[str, Any] = go_regexes(strict(model.model_json_schema(by_alias=True)))
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    return schema


def scaled_object_schema() -> dict[str, Any]:
    return crd_schema(ScaledObject)


# Custom resources: KEDA's, and the Prometheus Operator's (option `observability`).
CRD_SCHEMAS = {
    "ScaledObject": scaled_object_schema(),
    "PodMonitor": crd_schema(PodMonitor),
    "PrometheusRule": crd_schema(PrometheusRule),
}


# Trigger metadata each scaler needs to find the queue (KEDA's scaler documentation).
TRIGGER_KEYS = {
    "redis": ({"listName", "listLength"}, ({"address"}, {"host"}, {"hostFromEnv"})),
    "rabbitmq": ({"queueName", "mode", "value"}, ({"host"}, {"hostFromEnv"})),
}


def manifests(project: Path) -> dict[str, list[dict[str, Any]]]:
    return {path.name: yaml_documents(path) for path in sorted((project / "k8s").glob("*.yaml"))}


def containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    return containers


@pytest.mark.parametrize("answers", COMBOS, ids=combo_id)
def test_kubernetes_manifests_validate(rendered: RenderFn, answers: dict[str, Any]) -> None:
    project = rendered(answers)
    if not answers["kubernetes"]:
        assert not (project / "k8s").exists()
        return
    files = manifests(project)
    deployments: dict[str, dict[str, Any]] = {}
    scaled_objects = []
    for documents in files.values():
        for doc in documents:
            kind = doc["kind"]
            if kind == "Kustomization":
                continue
            if kind in CRD_SCHEMAS:
                jsonschema.validate(doc, CRD_SCHEMAS[kind])
                if kind == "ScaledObject":
                    scaled_objects.append(doc)
                continue
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            if kind == "Deployment":
                deployments[doc["metadata"]["name"]] = doc

    # kustomization.yaml applies every manifest but the example Secret and the migration Job.
    (kustomization,) = files["kustomization.yaml"]
    assert set(kustomization["resources"]) == set(files) - NOT_APPLIED_BY_KUSTOMIZE

    components = {
        d["metadata"]["labels"]["app.kubernetes.io/component"] for d in deployments.values()
    }
    expected = {"api", "worker", "worker-priority"} | {c for c in ("beat", "flower") if answers[c]}
    assert components == expected

    # Probes: readiness and liveness on the API, the broker ping on workers and beat.
    (api,) = (d for d in deployments.values() if d["metadata"]["name"].endswith("-api"))
    (api_container,) = containers(api)
    assert api_container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert api_container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    for deployment in deployments.values():
        component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        (container,) = containers(deployment)
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        if component in {"worker", "worker-priority", "beat"}:
            probe = " ".join(container["livenessProbe"]["exec"]["command"])
            assert "inspect ping -d" in probe
            assert "$HOSTNAME" in probe
        if component == "beat":
            assert deployment["spec"]["replicas"] == 1
            assert deployment["spec"]["strategy"]["type"] == "Recreate"

    # KEDA scales each worker Deployment on the length of exactly the queues it consumes.
    assert {s["spec"]["scaleTargetRef"]["name"] for s in scaled_objects} == {
        name for name, d in deployments.items() if "worker" in name
    }
    for scaled in scaled_objects:
        target = deployments[scaled["spec"]["scaleTargetRef"]["name"]]
        (container,) = containers(target)
        env = {e["name"]: e["value"] for e in container.get("env", [])}
        consumed = set(env["CELERY__WORKER_QUEUES"].split(","))
        measured = set()
        for trigger in scaled["spec"]["triggers"]:
            assert trigger["type"] == answers["broker"]
            required, one_of = TRIGGER_KEYS[trigger["type"]]
            metadata = set(trigger["metadata"])
            assert required <= metadata, trigger
            assert any(keys <= metadata for keys in one_of), trigger
            measured.add(trigger["metadata"].get("listName") or trigger["metadata"]["queueName"])
        assert measured == consumed
        assert target["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 300


def test_the_strict_schemas_reject_typos() -> None:
    # The validators would catch a misspelt field, not just a missing one.
    scaled = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "w"},
        "spec": {"scaleTargetRef": {"name": "w"}, "triggers": [], "maxReplicas": 3},
    }
    with pytest.raises(jsonschema.ValidationError, match="maxReplicas"):
        jsonschema.validate(scaled, scaled_object_schema())
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "w"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"spec": {"containers": [{"name": "w", "imagee": "x"}]}},
        },
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
