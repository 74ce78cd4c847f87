"""k8s/: every object is valid against the Kubernetes API schemas, and the workloads are wired as the
platform needs (probes, ports, one beat, an autoscaled worker, non-root pods, known variables).

Schemas come from kubernetes-validate (shipped with the package, so this runs offline), in strict
mode: an unknown or misspelt field fails.
"""

from __future__ import annotations

import copy
import json
import secrets

import kubernetes_validate
import pytest
from cryptography.fernet import Fernet

from tests.deploy.manifests import (
    K8S,
    REQUIRED_PRODUCTION_VARIABLES,
    SECRET_EXAMPLE,
    all_containers,
    cli_worker_queues,
    container_env_names,
    dockerfile_commands,
    env_sources,
    exposed_ports,
    find_object,
    load_kustomization,
    load_manifests,
    load_settings_with,
    manifest_paths,
    option_value,
    pod_spec,
    unread_variables,
    workloads,
)

# The oldest Kubernetes release the manifests target, and the newest the validator knows.
K8S_VERSIONS = ["1.30", kubernetes_validate.utils.latest_version()]


def _validate(obj: dict, version: str) -> None:
    kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", manifest_paths(), ids=lambda p: p.name)
def test_every_object_is_valid_against_the_kubernetes_api_schema(path, version):
    objects = load_manifests([path])
    assert objects, f"{path.name} holds no object"
    for _, obj in objects:
        _validate(obj, version)


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d["spec"].update(replicas="two"),                       # wrong type
        lambda d: d["spec"].update(replica=2),                            # misspelt field
        lambda d: pod_spec(d)["containers"][0].pop("name"),               # required field
        lambda d: pod_spec(d)["containers"][0]["readinessProbe"]["httpGet"].update(port=[8000]),
    ],
    ids=["wrong-type", "unknown-field", "missing-required", "bad-probe-port"],
)
def test_validator_rejects_a_broken_copy_of_the_web_deployment(breakage):
    broken = copy.deepcopy(find_object("Deployment", "nexow-web"))
    breakage(broken)
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(broken, K8S_VERSIONS[0])


def test_manifests_are_namespace_agnostic():
    assert [obj["metadata"]["name"] for _, obj in load_manifests()
            if "namespace" in obj["metadata"]] == []


def test_kustomization_lists_every_manifest_but_the_secret_example():
    kustomization = load_kustomization()
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed))
    assert all((K8S / name).is_file() for name in listed)
    expected = {p.name for p in manifest_paths()} - {SECRET_EXAMPLE.name}
    assert set(listed) == expected
    assert "namespace" not in kustomization


def test_every_container_uses_the_one_image_that_kustomize_points_at_the_registry():
    images = {c["image"] for obj in workloads() for c in all_containers(pod_spec(obj))}
    assert images == {"nexow"}
    assert [i["name"] for i in load_kustomization()["images"]] == ["nexow"]


def test_kustomization_deploys_every_object_the_workloads_reference():
    listed = {obj["kind"] + "/" + obj["metadata"]["name"]
              for path, obj in load_manifests() if path != SECRET_EXAMPLE}
    for obj in workloads():
        for volume in pod_spec(obj).get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert "PersistentVolumeClaim/" + volume["persistentVolumeClaim"]["claimName"] in listed
        for container in all_containers(pod_spec(obj)):
            for ref in container.get("envFrom", []):
                if "configMapRef" in ref:
                    assert "ConfigMap/" + ref["configMapRef"]["name"] in listed


def _every_container():
    for obj in workloads():
        for container in all_containers(pod_spec(obj)):
            yield f"{obj['metadata']['name']}/{container['name']}", container


@pytest.mark.parametrize(("where", "container"), list(_every_container()),
                         ids=[w for w, _ in _every_container()])
def test_every_container_receives_only_variables_that_settings_reads(where, container):
    assert unread_variables(container_env_names(container, env_sources())) == []


@pytest.mark.parametrize(("where", "container"), list(_every_container()),
                         ids=[w for w, _ in _every_container()])
def test_every_container_receives_the_production_variables(where, container):
    names = container_env_names(container, env_sources())
    assert REQUIRED_PRODUCTION_VARIABLES <= names


def test_a_config_map_key_that_settings_never_reads_is_reported():
    container = find_object("Deployment", "nexow-web")["spec"]["template"]["spec"]["containers"][0]
    sources = env_sources()
    sources[("ConfigMap", "nexow-config")] = [*sources[("ConfigMap", "nexow-config")], "HOSTS"]
    assert unread_variables(container_env_names(container, sources)) == ["HOSTS"]


def test_a_reference_to_a_missing_config_map_is_reported():
    container = copy.deepcopy(
        find_object("Deployment", "nexow-web")["spec"]["template"]["spec"]["containers"][0])
    container["envFrom"].append({"configMapRef": {"name": "nexow-settings"}})
    with pytest.raises(LookupError, match="nexow-settings"):
        container_env_names(container, env_sources())


def test_config_map_leaves_debug_off_and_holds_no_secret():
    data = find_object("ConfigMap", "nexow-config")["data"]
    assert data["DEBUG"] == "0"
    assert not {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "EMAIL_URL"} & set(data)


def _cluster_environment(secret_key: str, credentials_key: str | None = None) -> dict[str, str]:
    environment = dict(find_object("ConfigMap", "nexow-config")["data"])
    environment.update(find_object("Secret", "nexow-secrets")["stringData"])
    environment["SECRET_KEY"] = secret_key
    if credentials_key is not None:
        environment["NEXOW_CREDENTIALS_KEY"] = credentials_key
    return environment


def test_settings_accept_the_config_map_with_a_real_secret(tmp_path):
    result = load_settings_with(_cluster_environment(secrets.token_urlsafe(50),
                                                     Fernet.generate_key().decode()), tmp_path)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert (loaded["DEBUG"], loaded["RUN_MODE"]) == (False, "services")
    assert loaded["DB_HOST"] == "postgres.example.internal"
    assert loaded["LOG_FORMAT"] == "json"
    # The kubelet probes send "Host: localhost".
    assert "localhost" in loaded["ALLOWED_HOSTS"]


def test_the_secret_examples_placeholder_key_is_refused_at_start(tmp_path):
    placeholder = find_object("Secret", "nexow-secrets")["stringData"]["SECRET_KEY"]
    result = load_settings_with(_cluster_environment(placeholder), tmp_path)
    assert result.returncode == 2
    assert "SECRET_KEY is insecure" in result.stderr


def test_the_secret_examples_placeholder_credentials_key_is_refused_at_start(tmp_path):
    result = load_settings_with(_cluster_environment(secrets.token_urlsafe(50)), tmp_path)
    assert result.returncode == 2
    assert "NEXOW_CREDENTIALS_KEY is not a comma-separated list of Fernet keys" in result.stderr


# --- web --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def web() -> dict:
    return find_object("Deployment", "nexow-web")


def _container(deployment: dict, name: str) -> dict:
    return next(c for c in pod_spec(deployment)["containers"] if c["name"] == name)


def _port_number(container: dict, port: int | str) -> int:
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container["ports"] if p["name"] == port)


def test_web_runs_two_replicas_without_dropping_below_two_during_a_rollout(web):
    assert web["spec"]["replicas"] == 2
    assert web["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_web_readiness_probe_is_readyz_and_liveness_probe_is_healthz(web):
    container = _container(web, "web")
    allowed = find_object("ConfigMap", "nexow-config")["data"]["ALLOWED_HOSTS"].split(",")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"),
                        ("startupProbe", "/healthz")):
        http = container[probe]["httpGet"]
        assert http["path"] == path
        assert _port_number(container, http["port"]) == 8000
        # Django answers 400 to a Host outside ALLOWED_HOSTS, and a pod IP never is one.
        host = {h["name"]: h["value"] for h in http["httpHeaders"]}["Host"]
        assert host in allowed


def test_web_port_matches_the_service_and_the_images_expose(web):
    container = _container(web, "web")
    service = find_object("Service", "nexow-web")
    (port,) = service["spec"]["ports"]
    assert _port_number(container, port["targetPort"]) == 8000
    assert exposed_ports(dockerfile_commands()) == {8000}
    selector = service["spec"]["selector"]
    labels = web["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


def test_web_runs_the_images_default_command():
    cmd = next(c for c in dockerfile_commands() if c.cmd == "CMD")
    assert _container(find_object("Deployment", "nexow-web"), "web")["args"] == list(cmd.value)


def test_ingress_routes_to_the_web_service_and_keeps_websockets_open():
    ingress = find_object("Ingress", "nexow-web")
    service = find_object("Service", "nexow-web")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    annotations = ingress["metadata"]["annotations"]
    # Idle WebSockets would be cut after ingress-nginx's default 60 s.
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600


def test_web_drains_within_its_termination_grace_period(web):
    spec = pod_spec(web)
    container = _container(web, "web")
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    graceful = int(option_value(container["args"], "--timeout-graceful-shutdown"))
    # 10 s preStop + 25 s drain = 35 s < 45 s: the kubelet's SIGKILL comes after the drain.
    assert int(pre_stop[1]) + graceful < spec["terminationGracePeriodSeconds"]


def test_web_has_a_disruption_budget():
    budget = find_object("PodDisruptionBudget", "nexow-web")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "web"


# --- every workload -------------------------------------------------------------------------------
@pytest.mark.parametrize("obj", workloads(), ids=lambda o: o["metadata"]["name"])
def test_every_pod_runs_as_non_root_without_privilege_escalation(obj):
    spec = pod_spec(obj)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    for container in all_containers(spec):
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"]["drop"] == ["ALL"]


@pytest.mark.parametrize("obj", workloads(), ids=lambda o: o["metadata"]["name"])
def test_every_container_has_resource_requests_within_its_limits(obj):
    for container in all_containers(pod_spec(obj)):
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"])
        assert {"cpu", "memory"} <= set(resources["limits"])
        assert _cpu(resources["requests"]["cpu"]) <= _cpu(resources["limits"]["cpu"])
        assert _bytes(resources["requests"]["memory"]) <= _bytes(resources["limits"]["memory"])


def _cpu(quantity: str) -> float:
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def _bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    return int(quantity[:-2]) * units[quantity[-2:]]


@pytest.mark.parametrize("name", ["nexow-web", "nexow-worker", "nexow-beat"])
def test_processes_wait_for_the_migrate_job_before_starting(name):
    init = pod_spec(find_object("Deployment", name))["initContainers"]
    assert [c["name"] for c in init] == ["wait-for-migrations"]
    assert "nexow manage migrate --check" in init[0]["command"][-1]


def test_migrate_job_applies_the_migrations():
    job = find_object("Job", "nexow-migrate")
    (container,) = pod_spec(job)["containers"]
    assert container["args"] == ["nexow", "manage", "migrate", "--noinput"]
    assert pod_spec(job)["restartPolicy"] in ("OnFailure", "Never")
    assert job["spec"]["backoffLimit"] >= 1


# --- worker and beat ------------------------------------------------------------------------------
def test_worker_consumes_the_same_queues_as_nexow_start():
    args = _container(find_object("Deployment", "nexow-worker"), "worker")["args"]
    assert args[:4] == ["celery", "-A", "nexow_site", "worker"]
    assert option_value(args, "-Q") == cli_worker_queues()


def test_worker_is_scaled_by_an_autoscaler_on_cpu():
    worker = find_object("Deployment", "nexow-worker")
    hpas = [obj for _, obj in load_manifests() if obj["kind"] == "HorizontalPodAutoscaler"]
    targeting = [h for h in hpas if h["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": worker["metadata"]["name"]}]
    assert len(targeting) == 1
    (hpa,) = targeting
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert 0 < metric["resource"]["target"]["averageUtilization"] <= 100
    # A CPU utilisation target needs a CPU request to be a percentage of; and a fixed replica
    # count in the Deployment would fight the autoscaler on every apply.
    assert "cpu" in _container(worker, "worker")["resources"]["requests"]
    assert "replicas" not in worker["spec"]


def test_worker_gets_time_to_finish_running_tasks():
    assert pod_spec(find_object("Deployment", "nexow-worker"))["terminationGracePeriodSeconds"] >= 60


def test_beat_has_exactly_one_replica_replaced_not_rolled():
    beat = find_object("Deployment", "nexow-beat")
    assert beat["spec"]["replicas"] == 1
    # RollingUpdate would run the new beat next to the old one for a while.
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert _container(beat, "beat")["args"][:4] == ["celery", "-A", "nexow_site", "beat"]
    hpas = [obj for _, obj in load_manifests() if obj["kind"] == "HorizontalPodAutoscaler"]
    assert all(h["spec"]["scaleTargetRef"]["name"] != "nexow-beat" for h in hpas)
