"""Triton going away: the service answers 503 with Retry-After and reports not-ready; when Triton
comes back the service recovers by itself, without a restart."""

import time

import httpx
import pytest

from runtime.stack import live_group_members
from tests.conftest import start_stack
from tests.images import encode, synthetic_photo

pytestmark = pytest.mark.slow


def test_triton_stop_and_restart(tmp_path_factory):
    stack = start_stack("recovery", tmp_path_factory.mktemp("home"))
    try:
        client = httpx.Client(base_url=stack.service_url("segmentation"), timeout=60)
        files = {"image": ("a.jpg", encode(synthetic_photo(200, 300)), "image/jpeg")}
        assert client.post("/v1/segment", files=files).status_code == 200
        service = stack.services["segmentation"]

        group = stack.triton.pid  # Triton's process group: it and its backend processes
        stack.stop_triton()
        assert not live_group_members(group), "backend processes outlived Triton"
        r = client.post("/v1/segment", files=files)
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert int(r.headers["retry-after"]) >= 1
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["ready"] is False
        assert client.get("/healthz").status_code == 200  # the process itself is fine

        stack.start_triton()
        stack.wait_until(stack.triton_url() + "/v2/health/ready", 120, stack.triton)
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "service did not recover within 30 s of Triton being ready"
            time.sleep(0.5)
        assert client.post("/v1/segment", files=files).status_code == 200
        assert service.poll() is None  # same process all along
    finally:
        stack.stop()
