"""The monitoring files of option `observability`, checked by the real tools.

promtool (Debian's `prometheus` package) checks the alert rules, runs their unit tests
(monitoring/prometheus/alerts.test.yml: every alert firing and not firing), checks the
Prometheus configuration and parses every dashboard query. The Grafana dashboard is decoded with
grafana-foundation-sdk's models (generated from Grafana's own schemas) and must come back
unchanged, so no field is one Grafana does not know. Compose's `monitoring` profile and the
Kubernetes PodMonitors are checked against the services they scrape, and every metric a panel or
an alert reads must be one the service exports.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from tests.support import require_debian_tool

from .conftest import RenderFn
from .helpers import check_ok, combo_id, compose_config, ops_combinations, tool, yaml_documents

COMBOS = ops_combinations()
MONITORED = [answers for answers in COMBOS if answers["observability"]]
PROD_SECRETS = {
    "POSTGRES_PASSWORD": "ci",
    "REDIS_PASSWORD": "ci",
    "RABBITMQ_PASSWORD": "ci",
    "FLOWER__PASSWORD": "ci",
}
MONITORING_SERVICES = {"prometheus", "grafana"}
PANEL_TYPES = {"row", "timeseries", "stat"}
# Grafana's own variables, replaced by a duration so promtool can parse the queries.
GRAFANA_RANGES = {"$__rate_interval": "5m", "$__range": "1h", "$__interval": "1m"}
SERVICE_METRIC = re.compile(r"\b(?:celery|task|http)_[a-z_]+\b")

register_default_plugins()


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_debian_tool("promtool", "prometheus")


def run_promtool(promtool: str, *args: str, cwd: Path) -> str:
    result = subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"promtool {' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def exported_series(project: Path) -> set[str]:
    """The series names the service exports, read from its core/metrics.py."""
    source = (project / "app" / "core" / "metrics.py").read_text()
    series = set()
    for kind, name in re.findall(r'(Counter|Histogram|GaugeMetricFamily)\(\s*"([a-z_]+)"', source):
        if kind == "Counter":
            series.add(f"{name}_total")
        elif kind == "Histogram":
            series |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        else:
            series.add(name)
    assert len(series) > 10, series
    return series


def alert_rules(project: Path) -> list[dict[str, Any]]:
    groups = yaml.safe_load((project / "monitoring/prometheus/alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard(project: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (project / "monitoring/grafana/dashboards/service.json").read_text()
    )
    return data


def queries(board: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]


def lost_in_round_trip(sent: Any, back: Any, path: str = "") -> list[str]:
    """Whatever of `sent` is missing or different in `back` (extra defaults in `back` are fine)."""
    if isinstance(sent, dict):
        if not isinstance(back, dict):
            return [f"{path}: {back!r}"]
        return [
            problem
            for key, value in sent.items()
            for problem in (
                lost_in_round_trip(value, back[key], f"{path}.{key}")
                if key in back
                else [f"{path}.{key}: not in the schema"]
            )
        ]
    if isinstance(sent, list):
        if not isinstance(back, list) or len(sent) != len(back):
            return [f"{path}: {back!r}"]
        return [
            problem
            for index, (one, other) in enumerate(zip(sent, back, strict=True))
            for problem in lost_in_round_trip(one, other, f"{path}[{index}]")
        ]
    return [] if sent == back else [f"{path}: {sent!r} came back as {back!r}"]


def to_plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda item: item.to_json()))


@pytest.mark.parametrize("answers", COMBOS, ids=combo_id)
def test_alert_rules_pass_promtool_and_their_unit_tests(
    rendered: RenderFn, answers: dict[str, Any], promtool: str
) -> None:
    project = rendered(answers)
    if not answers["observability"]:
        assert not (project / "monitoring").exists()
        return
    rules_dir = project / "monitoring" / "prometheus"
    assert "8 rules found" in run_promtool(promtool, "check", "rules", "alerts.yml", cwd=rules_dir)
    run_promtool(promtool, "test", "rules", "alerts.test.yml", cwd=rules_dir)

    # Every alert has a unit test that fires it and one where it stays quiet.
    unit_tests = yaml.safe_load((rules_dir / "alerts.test.yml").read_text())["tests"]
    checks = [check for test in unit_tests for check in test["alert_rule_test"]]
    for rule in alert_rules(project):
        mine = [check for check in checks if check["alertname"] == rule["alert"]]
        assert any(check["exp_alerts"] for check in mine), f"{rule['alert']} never fires"
        assert any(not check["exp_alerts"] for check in mine), f"{rule['alert']} never quiet"
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert {"summary", "description"} <= set(rule["annotations"])
    used = {name for rule in alert_rules(project) for name in SERVICE_METRIC.findall(rule["expr"])}
    assert used <= exported_series(project), used - exported_series(project)


@pytest.mark.parametrize("answers", MONITORED[:3], ids=combo_id)
def test_prometheus_configuration_passes_promtool(
    rendered: RenderFn, answers: dict[str, Any], promtool: str, tmp_path: Path
) -> None:
    project = rendered(answers)
    # As compose mounts it: the configuration, the rules and the token file side by side.
    shutil.copytree(project / "monitoring" / "prometheus", tmp_path, dirs_exist_ok=True)
    (tmp_path / "metrics-token").write_text("ci-token\n")
    output = run_promtool(promtool, "check", "config", "prometheus.yml", cwd=tmp_path)
    assert "1 rule files found" in output


@pytest.mark.parametrize("answers", MONITORED[:3], ids=combo_id)
def test_dashboard_matches_grafanas_schema_and_the_services_metrics(
    rendered: RenderFn, answers: dict[str, Any], promtool: str, tmp_path: Path
) -> None:
    project = rendered(answers)
    board = dashboard(project)
    assert board["uid"]
    assert board["title"]
    assert isinstance(board["schemaVersion"], int)
    decoded = Dashboard.from_json(board)
    lost = lost_in_round_trip(board, to_plain(decoded.to_json()))
    assert not lost, "\n".join(lost)

    datasource = yaml.safe_load(
        (project / "monitoring/grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        assert panel["type"] in PANEL_TYPES, panel["type"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"panel {panel['title']!r} overlaps another"
        cells |= area
        for target in panel.get("targets", []):
            assert panel["datasource"]["uid"] == target["datasource"]["uid"] == datasource["uid"]
            assert target["datasource"]["type"] == datasource["type"] == "prometheus"

    # Every query parses (as a recording rule for promtool) and reads the service's metrics.
    expressions = queries(board)
    rules = []
    for index, expression in enumerate(expressions):
        parsable = expression
        for variable, duration in GRAFANA_RANGES.items():
            parsable = parsable.replace(variable, duration)
        rules.append({"record": f"dashboard:panel_query_{index}", "expr": parsable})
    (tmp_path / "queries.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "q", "rules": rules}]})
    )
    run_promtool(promtool, "check", "rules", "queries.yml", cwd=tmp_path)
    used = {name for expression in expressions for name in SERVICE_METRIC.findall(expression)}
    assert used <= exported_series(project), used - exported_series(project)
    # The figures the issue asks to see are all on it.
    for wanted in (
        "celery_task_failed_total",
        "celery_task_runtime_seconds_bucket",
        "celery_queue_length",
        "task_backlog_oldest_age_seconds",
        "celery_task_dead_total",
        "celery_worker_consuming",
        "task_enqueue_total",
        "http_request_duration_seconds_count",
    ):
        assert wanted in used, wanted


def monitoring_config(project: Path, file: str, **env: str) -> dict[str, Any]:
    return compose_config(
        project, file, env={"COMPOSE_PROFILES": "monitoring", **PROD_SECRETS, **env}
    )


@pytest.mark.parametrize("answers", COMBOS, ids=combo_id)
@pytest.mark.parametrize("file", ["compose.yaml", "compose.prod.yaml"])
def test_compose_monitoring_profile_scrapes_every_service(
    rendered: RenderFn, answers: dict[str, Any], file: str
) -> None:
    project = rendered(answers)
    (project / ".env").touch()
    config = monitoring_config(project, file)
    services: dict[str, Any] = config["services"]
    if not answers["observability"]:
        assert not MONITORING_SERVICES & set(services)
        assert "configs" not in config
        return
    assert set(services) >= MONITORING_SERVICES
    # Off unless asked for: without the profile neither service exists.
    plain = compose_config(project, file, env=PROD_SECRETS)
    assert not MONITORING_SERVICES & set(plain["services"])
    (project / ".ops-monitoring.json").write_text(json.dumps(config))
    schema = ("--builtin-schema", "vendor.compose-spec")
    check_ok(tool("check-jsonschema", *schema, ".ops-monitoring.json", cwd=project))

    prometheus, grafana = services["prometheus"], services["grafana"]
    for service in (prometheus, grafana):
        assert service["healthcheck"]["test"], service
        assert service["profiles"] == ["monitoring"]
        assert all(volume["type"] == "volume" for volume in service.get("volumes", []))
        if file == "compose.prod.yaml":
            assert service["restart"] == "unless-stopped"
            assert service["deploy"]["resources"]["limits"]["memory"]
            assert all(port["host_ip"] == "127.0.0.1" for port in service["ports"])
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"

    # Every config file exists; each lands where the others expect it.
    configs = config["configs"]
    for source in configs.values():
        if "file" in source:
            assert Path(source["file"]).is_file(), source
    targets = {
        mount["source"]: Path(mount["target"])
        for service in (prometheus, grafana)
        for mount in service["configs"]
    }
    scrape = yaml.safe_load(Path(configs["prometheus-config"]["file"]).read_text())
    config_dir = targets["prometheus-config"].parent
    assert [config_dir / name for name in scrape["rule_files"]] == [targets["prometheus-alerts"]]
    (api_job,) = (job for job in scrape["scrape_configs"] if job["job_name"] == "api")
    assert config_dir / api_job["authorization"]["credentials_file"] == targets["metrics-token"]
    assert configs["metrics-token"]["content"] == "unset"
    with_token = monitoring_config(project, file, METRICS__TOKEN="ci-metrics-token")  # noqa: S106
    assert with_token["configs"]["metrics-token"]["content"] == "ci-metrics-token"

    # Prometheus finds every replica of the services by their compose names and ports.
    api_command = services["api"]["command"]
    api_port = int(api_command[api_command.index("--port") + 1])
    ports = {}
    for job in scrape["scrape_configs"]:
        for sd in job["dns_sd_configs"]:
            for name in sd["names"]:
                assert name in services, name
                ports[name] = sd["port"]
    example = (project / ".env.example").read_text()
    (worker_port,) = re.findall(r"^METRICS__WORKER_PORT=(\d+)$", example, re.MULTILINE)
    worker = int(worker_port)
    assert ports == {"api": api_port, "worker": worker, "worker-priority": worker}

    # Grafana: the data source is this Prometheus, the dashboard is where the provider looks.
    datasource = yaml.safe_load(Path(configs["grafana-datasource"]["file"]).read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load(Path(configs["grafana-dashboards"]["file"]).read_text())
    assert Path(provider["providers"][0]["options"]["path"]) == targets["grafana-dashboard"].parent
    if file == "compose.prod.yaml":
        # uvicorn's --workers processes share one metrics directory.
        assert services["api"]["environment"]["PROMETHEUS_MULTIPROC_DIR"]


K8S_MONITORED = [a for a in MONITORED if a["kubernetes"]]


@pytest.mark.parametrize("answers", K8S_MONITORED[:4], ids=combo_id)
def test_kubernetes_pod_monitors_scrape_the_api_and_workers(
    rendered: RenderFn, answers: dict[str, Any]
) -> None:
    project = rendered(answers)
    documents = {
        (doc["kind"], doc["metadata"]["name"]): doc
        for path in (project / "k8s").glob("*.yaml")
        for doc in yaml_documents(path)
        if doc["kind"] != "Kustomization"
    }
    deployments = [doc for (kind, _), doc in documents.items() if kind == "Deployment"]
    monitors = [doc for (kind, _), doc in documents.items() if kind == "PodMonitor"]
    secret = next(doc for (kind, _), doc in documents.items() if kind == "Secret")
    configmap = next(doc for (kind, _), doc in documents.items() if kind == "ConfigMap")
    worker_port = int(configmap["data"]["METRICS__WORKER_PORT"])
    scraped: set[str] = set()
    for monitor in monitors:
        selector = monitor["spec"]["selector"]
        for deployment in deployments:
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            if not selector.get("matchLabels", {}).items() <= labels.items():
                continue
            if not all(
                labels.get(rule["key"]) in rule["values"]
                for rule in selector.get("matchExpressions", [])
            ):
                continue
            component = labels["app.kubernetes.io/component"]
            scraped.add(component)
            (container,) = deployment["spec"]["template"]["spec"]["containers"]
            declared = {port["name"]: port["containerPort"] for port in container["ports"]}
            for endpoint in monitor["spec"]["podMetricsEndpoints"]:
                assert endpoint["port"] in declared, (component, endpoint)
                if component != "api":
                    assert declared[endpoint["port"]] == worker_port
                credentials = endpoint.get("authorization", {}).get("credentials")
                if component == "api":
                    assert credentials["name"] == secret["metadata"]["name"]
                    assert credentials["key"] in secret["stringData"]
    assert scraped == {"api", "worker", "worker-priority"}

    # The PrometheusRule carries exactly the rule file's groups.
    (rule,) = (doc for (kind, _), doc in documents.items() if kind == "PrometheusRule")
    groups = yaml.safe_load((project / "monitoring/prometheus/alerts.yml").read_text())["groups"]
    assert rule["spec"]["groups"] == groups
