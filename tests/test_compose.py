"""docker-compose.yml and the service image's requirements, checked without a Docker engine.

`docker-compose config` (v1.29, Debian package; `make system-deps` installs it) validates the file
and prints it resolved; the tests read that output, so they see what Compose itself understood.
Note: v1.29 `config` accepts `--profile` but prints every service regardless, so profiles are checked
from the `profiles` keys.
"""

import ast
import os
import re
import shutil
import subprocess
import sys
import time
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml
from pydantic import TypeAdapter

from services.catalog import SERVICES
from services.common.settings import Settings

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yml"


def compose(*args: str, file: Path = COMPOSE_FILE) -> subprocess.CompletedProcess:
    exe = shutil.which("docker-compose")
    if exe is None:
        reason = "docker-compose is not installed (`make system-deps` installs Debian's docker-compose)"
        if os.environ.get("CI"):
            pytest.fail(reason + "; CI must have it")
        pytest.skip(reason)
    # A clean environment: the file's ${VAR:-default}s resolve to their defaults, whatever the shell has.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        [exe, "-f", str(file), "--project-directory", str(REPO), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def config() -> dict:
    result = compose("config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    return env if isinstance(env, dict) else dict(item.split("=", 1) for item in env)


def test_file_is_valid_with_every_profile():
    listed = compose("config", "--profiles")
    assert listed.returncode == 0, listed.stderr
    assert set(listed.stdout.split()) == {"monitoring"}
    for profile in ("monitoring",):
        result = compose("--profile", profile, "config", "-q")
        assert result.returncode == 0, f"--profile {profile}: {result.stderr}"


@pytest.mark.parametrize("breakage", [None, "unknown key", "undefined dependency", "bad port"])
def test_broken_copies_are_rejected(tmp_path, breakage):
    """The validation can fail: a copy with one mistake is refused (the unmodified copy is accepted)."""
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    seg = data["services"]["segmentation"]
    if breakage == "unknown key":
        seg["gpus_please"] = 1
    elif breakage == "undefined dependency":
        seg["depends_on"] = ["no-such-service"]
    elif breakage == "bad port":
        seg["ports"] = ["80800:not-a-port"]
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(data))
    result = compose("config", "-q", file=broken)
    if breakage is None:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode != 0, f"{breakage} was accepted"


def test_gpu_triton(config):
    triton = config["services"]["triton"]
    assert triton["image"].startswith("nvcr.io/nvidia/tritonserver:")
    assert any(
        v.endswith(":/models:ro") and v.split(":")[0] == str(REPO / "model_repository") for v in triton["volumes"]
    )
    assert "--model-repository=/models" in triton["command"]
    assert "--model-config-name=gpu" in triton["command"]
    assert (REPO / "model_repository/segmentation/configs/gpu.pbtxt").is_file()
    assert "/v2/health/ready" in " ".join(triton["healthcheck"]["test"])
    assert triton["runtime"] == "nvidia" and env_of(triton)["NVIDIA_VISIBLE_DEVICES"] == "0"
    assert triton["restart"] == "unless-stopped" and "shm_size" in triton
    assert triton["ipc"] == "shareable"  # the services' TRITON_SHARED_MEMORY regions live in its /dev/shm
    assert all(config["services"][s.name]["ipc"] == "service:triton" for s in SERVICES)
    assert {p["target"] for p in triton["ports"]} == {8000, 8001, 8002}


def test_cpu_env_file_runs_triton_without_a_gpu():
    result = compose("--env-file", str(REPO / "docker/cpu.env"), "config")
    assert result.returncode == 0, result.stderr
    triton = yaml.safe_load(result.stdout)["services"]["triton"]
    assert triton["runtime"] == "runc" and env_of(triton)["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert "--model-config-name=cpu" in triton["command"]
    models = [d for d in (REPO / "model_repository").iterdir() if d.is_dir()]
    assert models and all(not (d / "configs/cpu.pbtxt").exists() for d in models), "cpu must fall back"
    assert all("KIND_CPU" in (d / "config.pbtxt").read_text() for d in models)


@pytest.mark.slow
def test_a_config_name_no_model_has_falls_back_to_config_pbtxt(tmp_path):
    """What docker/cpu.env relies on, shown by the real tritonserver: --model-config-name=cpu loads
    config.pbtxt (KIND_CPU) when configs/cpu.pbtxt does not exist."""
    import httpx

    from runtime.stack import free_port

    repo = tmp_path / "repo"
    shutil.copytree(REPO / "model_repository/pose", repo / "pose")
    http, grpc, metrics = free_port(), free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runtime.triton",
            f"--model-repository={repo}",
            f"--http-port={http}",
            f"--grpc-port={grpc}",
            f"--metrics-port={metrics}",
            "--model-config-name=cpu",
        ],
        cwd=REPO,
        env=os.environ | {"HOME": str(tmp_path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(240):
            try:
                if httpx.get(f"http://127.0.0.1:{http}/v2/models/pose/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, "tritonserver exited"
            time.sleep(0.5)
        cfg = httpx.get(f"http://127.0.0.1:{http}/v2/models/pose/config", timeout=5).json()
        assert [g["kind"] for g in cfg["instance_group"]] == ["KIND_CPU"]
    finally:
        proc.terminate()
        proc.wait(30)


def test_dependencies_respect_profiles(config):
    """`config` does not check this, `up` does: a dependency must be enabled whenever its dependent is."""
    services = config["services"]
    for name, svc in services.items():
        mine = set(svc.get("profiles", []))
        for dep in svc.get("depends_on", {}):
            theirs = set(services[dep].get("profiles", []))
            assert not theirs or (mine and mine <= theirs), f"{name} depends on {dep} of profiles {theirs}"


@pytest.mark.parametrize("info", SERVICES, ids=lambda i: i.name)
def test_service(config, info):
    svc = config["services"].get(info.name)
    assert svc is not None, f"{info.name} (services/catalog.py) is missing from docker-compose.yml"
    assert "profiles" not in svc  # started with every profile
    assert svc["build"]["dockerfile"] == "docker/service.Dockerfile"
    assert svc["build"]["args"] == {"APP": info.app, "PORT": str(info.port)}
    assert {"published": info.port, "target": info.port} in svc["ports"]
    assert f"${{{info.port_env}:-{info.port}}}" in COMPOSE_FILE.read_text()
    assert env_of(svc)["TRITON_GRPC_URL"] == "triton:8001"
    assert svc["depends_on"]["triton"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(svc["healthcheck"]["test"])
    assert svc["restart"] == "unless-stopped"
    assert svc["read_only"] is True and any(t.startswith("/tmp") for t in svc["tmpfs"])
    assert not svc["user"].startswith(("0", "root"))
    assert set(svc["deploy"]["resources"]["limits"]) >= {"cpus", "memory"}


@pytest.mark.parametrize("info", SERVICES, ids=lambda i: i.name)
def test_service_settings_defaults_match(config, info):
    """Every setting is passed through, and its compose default is the code's default."""
    env = env_of(config["services"][info.name])
    for name, field in Settings.model_fields.items():
        if name == "triton_grpc_url":
            continue
        assert name.upper() in env, f"{name.upper()} is not passed to {info.name}"
        # read as the service reads it (pydantic: "false" is False, which bool("false") is not)
        assert TypeAdapter(field.annotation).validate_python(env[name.upper()]) == field.default, name


def test_prometheus_scrapes_services_and_triton(config):
    assert config["services"]["prometheus"]["profiles"] == ["monitoring"]
    scrape = yaml.safe_load((REPO / "docker/prometheus.yml").read_text())
    targets = {t for job in scrape["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert {f"{s.name}:{s.port}" for s in SERVICES} | {"triton:8002"} <= targets


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_image_requirements_cover_imports_and_match_lock():
    """docker/requirements-service.txt: every third-party import of services/ and fashionpixel/, at the lock's version."""

    def pins(path: Path) -> dict[str, str]:
        lines = [ln.split("#")[0].strip() for ln in path.read_text().splitlines()]
        return {_norm(re.sub(r"\[.*\]", "", n)): v for n, v in (ln.split("==") for ln in lines if ln)}

    image, lock = pins(REPO / "docker/requirements-service.txt"), pins(REPO / "requirements.lock")
    assert {n: v for n, v in image.items() if lock.get(n) != v} == {}, "pins differ from requirements.lock"
    modules = set()
    for py in [*REPO.glob("services/**/*.py"), *REPO.glob("fashionpixel/**/*.py")]:
        for node in ast.walk(ast.parse(py.read_text())):
            if isinstance(node, ast.Import):
                modules |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules.add(node.module.split(".")[0])
    third_party = modules - set(sys.stdlib_module_names) - {"services", "fashionpixel"}
    dists = packages_distributions()
    missing = {m for m in third_party if not any(_norm(d) in image for d in dists.get(m, [m]))}
    assert not missing, f"imported but not in docker/requirements-service.txt: {missing}"
    assert not {"torch", "onnx", "onnxruntime", "nvidia-pytriton"} & set(image)
