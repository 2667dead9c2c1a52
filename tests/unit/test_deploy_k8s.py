"""deploy/k8s: every overlay renders, every object validates against the Kubernetes schemas (the
operators' CRD schemas for their kinds), and the manifests agree with the code: the processes of
deploy/Procfile, the environment their settings classes read, their ports, probes on the health
contract, the queue names the consumers read and the webhook paths the receivers serve."""

from __future__ import annotations

import inspect
import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
from pydantic import SecretStr

from shared.adapters.broker import BULK_SUFFIX, WORK_QUEUES
from shared.admin.console import PREFIX as CONSOLE_PREFIX
from shared.admin.settings import AdminServiceSettings
from shared.bootstrap.consumer import run_consumer
from shared.bootstrap.receiver import QBO_PATH, RELEASED_PATH
from shared.infra.settings import read_env_file
from tests.support.deploy import (
    CONTAINER_OPS_PORT,
    ROOT,
    Process,
    all_known_env,
    processes,
    settings_accept,
)
from tests.support.kustomize import KustomizeError, canonical, key, kubectl_render, render

K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("sandbox", "production")
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")  # the oldest we claim (preStop sleep), the newest
CRD_SCHEMAS = ROOT / "tests" / "support" / "crd_schemas"
SECRET_ENV = {"DATABASE_URL", "AMQP_URL"}  # they carry passwords: Secrets only
Obj = dict[str, Any]
ADMIN_DUMMY: dict[str, Any] = {
    name: "x" for name, field in AdminServiceSettings.model_fields.items() if field.is_required()
}


@cache
def rendered(overlay: str) -> tuple[Obj, ...]:
    return tuple(render(K8S / "overlays" / overlay))


def find(overlay: str, kind: str, name: str | None = None) -> list[Obj]:
    return [
        o
        for o in rendered(overlay)
        if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def one(overlay: str, kind: str, name: str) -> Obj:
    found = find(overlay, kind, name)
    assert len(found) == 1, f"{overlay}: expected one {kind}/{name}, found {len(found)}"
    return found[0]


def k8s_name(process: Process) -> str:
    return process.name.replace("_", "-")


def container_of(overlay: str, process: Process) -> Obj:
    pod = one(overlay, "Deployment", k8s_name(process))["spec"]["template"]["spec"]
    [container] = [c for c in pod["containers"] if c["name"] == k8s_name(process)]
    return dict(container)


def env_of(overlay: str, container: Obj) -> dict[str, Obj]:
    """Every variable the container sees: ConfigMaps it loads, then its own ``env``."""
    env: dict[str, Obj] = {}
    for source in container.get("envFrom", []):
        config = one(overlay, "ConfigMap", source["configMapRef"]["name"])
        env.update({k: {"value": v, "from": "configmap"} for k, v in config["data"].items()})
    for var in container.get("env", []):
        env[var["name"]] = var
    return env


def secret_value(overlay: str, ref: Obj) -> str | None:
    found = find(overlay, "Secret", ref["name"])
    return str(found[0]["stringData"][ref["key"]]) if found else None


PRODUCT = [p for p in processes() if p.product]
STAND_INS = [p for p in processes() if not p.product]
CASES = [(o, p) for o in OVERLAYS for p in PRODUCT]
IDS = [f"{o}-{p.name}" for o, p in CASES]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_renderer_agrees_with_kubectl(overlay: str) -> None:
    theirs = kubectl_render(K8S / "overlays" / overlay)
    if theirs is None:
        pytest.skip("kubectl is not installed; the offline renderer alone renders")
    assert canonical(list(rendered(overlay))) == canonical(theirs)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_its_schema(overlay: str) -> None:
    keys = [key(o) for o in rendered(overlay)]
    assert len(keys) == len(set(keys)), "two objects of one kind share a name"
    for obj in rendered(overlay):
        schema = crd_schema(obj)
        if schema is not None:
            jsonschema.Draft7Validator(schema).validate(obj)
            continue
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


def crd_schema(obj: Obj) -> Obj | None:
    group, _, version = obj["apiVersion"].rpartition("/")
    if "." not in group:
        return None  # a core or well-known group: the Kubernetes schemas have it
    path = CRD_SCHEMAS / f"{obj['kind'].lower()}-{group}-{version}.json"
    if not path.exists() and group.endswith(".k8s.io"):
        return None
    assert path.exists(), f"no schema for {obj['apiVersion']} {obj['kind']}"
    loaded: Obj = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def test_the_crd_schemas_refuse_an_unknown_field_and_a_bad_type() -> None:
    scaled = one("production", "ScaledObject", "qbo-to-released")
    schema = crd_schema(scaled)
    assert schema is not None
    typo = json.loads(json.dumps(scaled))
    typo["spec"]["maxReplicaCnt"] = 3
    wrong = json.loads(json.dumps(scaled))
    wrong["spec"]["maxReplicaCount"] = "many"
    for bad in (typo, wrong):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft7Validator(schema).validate(bad)


@pytest.mark.parametrize(("overlay", "process"), CASES, ids=IDS)
def test_each_process_runs_its_module_with_the_env_its_settings_need(
    overlay: str, process: Process
) -> None:
    container = container_of(overlay, process)
    assert container["command"] == ["python", "-m", process.module]
    env = env_of(overlay, container)
    missing = process.required_env - env.keys()
    assert not missing, f"{process.name} would refuse to start without {sorted(missing)}"
    own = {v["name"] for v in container.get("env", [])}
    assert not own - process.known_env, f"{process.name}: nothing reads {own - process.known_env}"
    secrets = SECRET_ENV | {
        n.upper() for n, f in process.settings.model_fields.items() if f.annotation is SecretStr
    }
    for name in secrets & env.keys():
        assert "secretKeyRef" in env[name].get("valueFrom", {}), f"{name} must be a Secret ref"
    values = {
        n: v["value"] if "value" in v else secret_value(overlay, v["valueFrom"]["secretKeyRef"])
        for n, v in env.items()
    }
    settings_accept(process, {n: v or "from-a-secret" for n, v in values.items()})


def test_the_shared_config_names_only_what_some_settings_class_reads() -> None:
    for overlay in OVERLAYS:
        for config in find(overlay, "ConfigMap"):
            assert not set(config["data"]) - all_known_env(), config["metadata"]["name"]


def listen_port(overlay: str, process: Process) -> int:
    env = env_of(overlay, container_of(overlay, process))
    host_var, port_var = process.listener
    assert env[host_var]["value"] == "0.0.0.0", f"{process.name}: {host_var}"  # noqa: S104
    port = int(env[port_var]["value"])
    if port_var == "OPS_PORT":
        assert port == CONTAINER_OPS_PORT
    return port


@pytest.mark.parametrize(("overlay", "process"), CASES, ids=IDS)
def test_probes_and_metrics_use_the_health_contract_on_the_listening_port(
    overlay: str, process: Process
) -> None:
    port = listen_port(overlay, process)
    container = container_of(overlay, process)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path
        assert ports.get(get["port"], get["port"]) == port
    template = one(overlay, "Deployment", k8s_name(process))["spec"]["template"]
    notes = template["metadata"]["annotations"]
    assert notes["prometheus.io/path"] == "/metrics"
    assert notes["prometheus.io/port"] == str(port)


@pytest.mark.parametrize(("overlay", "process"), CASES, ids=IDS)
def test_pods_are_bounded_drained_and_unprivileged(overlay: str, process: Process) -> None:
    deployment = one(overlay, "Deployment", k8s_name(process))
    pod = deployment["spec"]["template"]["spec"]
    for container in pod.get("initContainers", []) + pod["containers"]:
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= container["resources"][bound].keys(), container["name"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    [init] = pod["initContainers"]
    assert init["command"] == ["python", "-m", "shared.infra.migrations"]
    pause = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = inspect.signature(run_consumer).parameters["drain_s"].default
    assert pod["terminationGracePeriodSeconds"] >= pause + drain + 10, "no time to drain"
    budgets = [
        b
        for b in find(overlay, "PodDisruptionBudget")
        if b["spec"]["selector"]["matchLabels"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert len(budgets) == 1, f"{process.name}: one PodDisruptionBudget"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_product_pod_is_behind_a_default_deny_network_policy(overlay: str) -> None:
    denying = [
        p
        for p in find(overlay, "NetworkPolicy")
        if set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and "ingress" not in p["spec"]
        and "egress" not in p["spec"]
    ]
    assert denying
    for process in PRODUCT:
        labels = one(overlay, "Deployment", k8s_name(process))["spec"]["template"]["metadata"]
        assert any(
            p["spec"]["podSelector"]["matchLabels"].items() <= labels["labels"].items()
            for p in denying
        ), process.name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_routes_the_webhook_paths_and_admin_to_their_ports(overlay: str) -> None:
    routes = {
        (path["path"], path["backend"]["service"]["name"])
        for rule in one(overlay, "Ingress", "sync")["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert routes == {
        (QBO_PATH, "qbo-webhooks"),
        (RELEASED_PATH, "released-webhooks"),
        ("/api", "admin"),
        ("/oauth", "admin"),
        (CONSOLE_PREFIX, "admin"),
    }
    # The OAuth redirect the admin service builds lands on a routed path.
    assert urlsplit(AdminServiceSettings(**ADMIN_DUMMY).redirect_uri).path.startswith("/oauth/")
    for process in PRODUCT:
        if process.listener[1] == "OPS_PORT":
            continue
        [port] = one(overlay, "Service", k8s_name(process))["spec"]["ports"]
        assert port["port"] == listen_port(overlay, process)
        assert port["targetPort"] in {p["name"] for p in container_of(overlay, process)["ports"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_receivers_scale_on_cpu(overlay: str) -> None:
    for name in ("qbo-webhooks", "released-webhooks"):
        hpa = one(overlay, "HorizontalPodAutoscaler", name)["spec"]
        assert hpa["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert hpa["metrics"][0]["resource"]["name"] == "cpu"


def test_production_consumers_scale_on_their_own_queue_depth() -> None:
    """Each consumer Deployment reads its live queue and its bulk lane; both drive its scale."""
    live = [q for q in WORK_QUEUES if not q.endswith(BULK_SUFFIX)]
    assert sorted(WORK_QUEUES) == sorted([*live, *(q + BULK_SUFFIX for q in live)])
    for queue in live:
        name = queue.removeprefix("sync.").replace("_", "-")
        scaled = one("production", "ScaledObject", name)["spec"]
        assert scaled["scaleTargetRef"]["name"] == name
        triggers = scaled["triggers"]
        assert [t["type"] for t in triggers] == ["rabbitmq", "rabbitmq"]
        assert [t["metadata"]["queueName"] for t in triggers] == [queue, queue + BULK_SUFFIX]
        for trigger in triggers:
            ref = trigger["authenticationRef"]["name"]
            auth = one("production", "TriggerAuthentication", ref)
            [host] = auth["spec"]["secretTargetRef"]
            assert (host["name"], host["key"]) == amqp_ref("production")


def test_production_leaves_replica_counts_to_the_autoscalers() -> None:
    """An apply that sets ``replicas`` on an autoscaled Deployment resets what the HPA or KEDA
    decided; in production they own the count, so the manifests must not set one."""
    scaled = {o["spec"]["scaleTargetRef"]["name"] for o in find("production", "ScaledObject")}
    scaled |= {
        o["spec"]["scaleTargetRef"]["name"] for o in find("production", "HorizontalPodAutoscaler")
    }
    assert scaled >= {k8s_name(p) for p in PRODUCT if p.name not in {"admin", "reconciler"}}
    for name in scaled:
        assert "replicas" not in one("production", "Deployment", name)["spec"], name


def amqp_ref(overlay: str) -> tuple[str, str]:
    process = next(p for p in PRODUCT if p.name == "reconciler")
    ref = env_of(overlay, container_of(overlay, process))["AMQP_URL"]["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


def test_production_runs_three_broker_nodes_and_three_database_instances() -> None:
    [rabbit] = find("production", "RabbitmqCluster")
    [database] = find("production", "Cluster")
    assert rabbit["spec"]["replicas"] == 3
    assert database["spec"]["instances"] == 3
    # The operators name the Secrets they make after their clusters; every process reads those.
    assert amqp_ref("production") == (
        f"{rabbit['metadata']['name']}-default-user",
        "connection_string",
    )
    for process in PRODUCT:
        env = env_of("production", container_of("production", process))
        ref = env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"]) == (f"{database['metadata']['name']}-app", "uri")


def test_production_defines_no_secret_and_pins_the_image() -> None:
    assert not find("production", "Secret")
    for deployment in find("production", "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert not container["image"].endswith(":latest"), container["image"]


def test_the_sandbox_resolves_every_secret_ref_and_shares_sandbox_env_values() -> None:
    refs = [
        var["valueFrom"]["secretKeyRef"]
        for deployment in find("sandbox", "Deployment") + find("sandbox", "Job")
        for container in deployment["spec"]["template"]["spec"].get("initContainers", [])
        + deployment["spec"]["template"]["spec"]["containers"]
        for var in container.get("env", [])
        if "secretKeyRef" in var.get("valueFrom", {})
    ]
    assert refs
    assert all(secret_value("sandbox", ref) is not None for ref in refs), "a ref to nothing"
    sandbox_env = read_env_file(ROOT / "deploy" / "sandbox.env")
    for name, value in one("sandbox", "Secret", "sync-app")["stringData"].items():
        assert value == sandbox_env[name], name


@pytest.mark.parametrize("process", STAND_INS, ids=lambda p: p.name)
def test_the_sandbox_runs_the_stand_ins_where_the_product_looks_for_them(process: Process) -> None:
    container = container_of("sandbox", process)
    assert container["command"] == ["python", "-m", process.module]
    port = listen_port("sandbox", process)
    [service_port] = one("sandbox", "Service", k8s_name(process))["spec"]["ports"]
    assert service_port["port"] == port
    config = one("sandbox", "ConfigMap", "sync-config")["data"]
    bases = [v for k, v in config.items() if k.endswith("_API_BASE")]
    assert any(v.startswith(f"http://{k8s_name(process)}:{port}") for v in bases)


def test_the_migration_job_runs_the_migrator() -> None:
    for overlay in OVERLAYS:
        job = one(overlay, "Job", "sync-migrate")["spec"]["template"]["spec"]
        assert job["containers"][0]["command"] == ["python", "-m", "shared.infra.migrations"]


def test_the_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\ncommonLabels: {a: b}\n")
    with pytest.raises(KustomizeError, match="commonLabels"):
        render(tmp_path)
