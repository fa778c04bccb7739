"""Adding a model (README "Add a model"), end to end with a tiny one: a PyTorch network, its registry
entry (defined here, not in fashionpixel/models.py), the project's export code writing it into a
temporary model repository, a real Triton serving that repository, and a pipeline called through the
services' Triton client, directly and from an endpoint of an app built with create_app."""

import asyncio

import httpx
import numpy as np
import pytest
import torch
from fastapi import APIRouter, Depends, Request

from export.onnx_tools import export_model
from export.triton_config import ModelSpec
from fashionpixel.letterbox import letterbox
from fashionpixel.models import Model, Tensor, chw, hwc
from fashionpixel.networks import infer_with
from fashionpixel.stages import inline, untimed
from runtime.stack import Ports, Stack
from services.catalog import ServiceInfo
from services.common.app import create_app
from services.common.forms import read_upload
from services.common.imaging import decode_rgb
from services.common.pipeline import Pipeline, pipeline
from services.common.settings import Settings, current_settings, get_settings
from services.common.triton import Triton
from tests.conftest import ARTIFACTS
from tests.images import encode, synthetic_photo

pytestmark = pytest.mark.slow

# The registry entry: Triton name, canvas, tensors.
CANVAS = (32, 48)
GREY = Model(
    "grey",
    CANVAS,
    inputs=(Tensor("image", "UINT8", hwc(CANVAS, 3)),),
    outputs=(Tensor("grey", "FP16", chw(1, CANVAS)),),
)
LUMA = (0.299, 0.587, 0.114)


class GreyServing(torch.nn.Module):
    """The network, as exported: uint8 N×H×W×3 in, float16 N×1×H×W grey levels in [0, 1] out."""

    def __init__(self):
        super().__init__()
        self.luma = torch.nn.Conv2d(3, 1, 1, bias=False)
        self.luma.weight.data[:] = torch.tensor(LUMA).view(1, 3, 1, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.luma(image.permute(0, 3, 1, 2).float() / 255).half()


async def mean_grey(image: np.ndarray, *, infer, cpu, stage) -> float:
    """The pipeline: photo → canvas → network → the photo's mean grey level (the padding left out)."""
    with stage("preprocess"):
        canvas, box = await cpu(letterbox, image, *GREY.canvas)
    with stage("infer"):
        grey = await infer(canvas)
    return float(grey[0, box.y : box.y + box.h, box.x : box.x + box.w].astype(np.float32).mean())


def expected_grey(image: np.ndarray) -> float:
    canvas, box = letterbox(image, *GREY.canvas)
    return float((canvas[box.y : box.y + box.h, box.x : box.x + box.w] @ np.float32(LUMA)).mean() / 255)


@pytest.fixture(scope="module")
def triton(tmp_path_factory):
    repository = tmp_path_factory.mktemp("model_repository")
    export_model(ModelSpec(GREY), GreyServing(), repository, version=1, atol=1e-3)  # ONNX + parity + configs
    stack = Stack(
        Ports.free(),
        repository=repository,
        log_dir=ARTIFACTS / "logs" / "add-a-model",
        env={"HOME": str(tmp_path_factory.mktemp("home"))},
    )
    try:
        stack.start(timeout=120, services=())  # Triton alone, on that repository
        yield stack
    finally:
        stack.stop()


def test_export_writes_the_model_in_tritons_layout(triton):
    folder = triton.repository / GREY.name
    assert GREY.onnx_path(triton.repository).is_file()
    assert 'name: "grey"' in (folder / "config.pbtxt").read_text()
    assert "KIND_GPU" in (folder / "configs" / "gpu.pbtxt").read_text()


def test_the_pipeline_runs_on_triton_through_the_services_client(triton):
    photo = synthetic_photo(60, 80)

    async def run():
        client = Triton(Settings(triton_grpc_url=f"127.0.0.1:{triton.ports.triton_grpc}"))
        try:
            return await mean_grey(photo, infer=infer_with(client, GREY), cpu=inline, stage=untimed)
        finally:
            await client.close()

    assert asyncio.run(run()) == pytest.approx(expected_grey(photo), abs=2e-3)  # float16 out


def test_a_service_endpoint_calls_it(triton, monkeypatch):
    router = APIRouter()

    @router.post("/grey")
    async def grey(request: Request, settings: Settings = Depends(current_settings), run: Pipeline = Depends(pipeline)):
        upload = await read_upload(request, settings, ("image",))
        image = await run.cpu(decode_rgb, upload.file("image"), settings)
        return {"grey": await mean_grey(image, infer=infer_with(run.network, GREY), cpu=run.cpu, stage=run.stage)}

    async def calls(app):
        async with app.router.lifespan_context(app):  # the app's Triton client and thread pool
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://grey") as client:
                ready = await client.get("/readyz")
                return ready, await client.post(
                    "/v1/grey", files={"image": ("p.png", encode(photo, "PNG"), "image/png")}
                )

    monkeypatch.setenv("TRITON_GRPC_URL", f"127.0.0.1:{triton.ports.triton_grpc}")
    get_settings.cache_clear()  # the app reads its settings once, from the environment
    try:
        photo = synthetic_photo(60, 80)
        ready, r = asyncio.run(calls(create_app(ServiceInfo("grey", "", 0, "", (GREY,)), "grey", router)))
        assert ready.json() == {"ready": True, "service": "grey", "models": ["grey"], "reason": "ok"}
        assert r.status_code == 200, r.text
        assert r.json()["grey"] == pytest.approx(expected_grey(photo), abs=2e-3)
        assert "infer;dur=" in r.headers["server-timing"]
    finally:
        get_settings.cache_clear()
