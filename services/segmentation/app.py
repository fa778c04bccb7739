"""POST /v1/segment: person/background or fashion parsing of a photo, as the API contract says.

uvicorn services.segmentation.app:app --port 8080
"""

import base64
from typing import Literal

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from fashionpixel.labels import FASHION_CLASSES, FASHION_PALETTE, PERSON_CLASSES, PERSON_PALETTE
from fashionpixel.models import POSE, SEGMENTATION, SEGMENTATION_CROPS
from fashionpixel.networks import infer_with
from fashionpixel.quality import Assessment
from fashionpixel.segmentation import segment as segment_photo
from services.catalog import service
from services.common import review
from services.common.app import create_app
from services.common.forms import openapi_body, read_photo_request
from services.common.imaging import encode_palette_png, encode_png
from services.common.pipeline import Pipeline, pipeline
from services.common.settings import Settings, current_settings
from services.demo import page as demo

# a task is the name of the segmentation model's output that answers it
TASKS = {"person": (PERSON_CLASSES, PERSON_PALETTE), "fashion": (FASHION_CLASSES, FASHION_PALETTE)}


class SegmentParams(BaseModel):
    """Defaults are the post-processing that measured best on validation data (docs/models/segmentation.md)."""

    task: Literal["fashion", "person"] = Field("fashion", description="fashion: 7 classes; person: 2")
    format: Literal["png", "json", "overlay"] = Field("png", description="palette PNG, JSON, or coloured overlay")
    crf: bool = Field(True, description="dense-CRF refinement (default on: +0.015 person, +0.03 fashion mean IoU)")
    min_region: int = Field(0, ge=0, le=10_000_000, description="absorb connected regions smaller than this (pixels)")
    superpixels: bool = Field(False, description="superpixel majority-vote refinement")
    backdrop: bool = Field(
        True,
        description="on a plain backdrop (a studio wall, a shop's white or grey), the outline snapped to "
        "where the backdrop's colour ends; elsewhere nothing changes",
    )
    focus: bool = Field(
        True,
        description="a second network pass on a crop around a person who fills little "
        "of the photo (a wide shot, a small figure on a padded canvas), found with the pose network's help; "
        "for the person mask both networks look at the crop",
    )

    def pipeline_args(self) -> dict:
        """The arguments of fashionpixel.segmentation.segment: every parameter but the task and the format
        (the quality fit runs the pipeline with the defaults through this too)."""
        return self.model_dump(exclude={"task", "format"})


def overlay(image: np.ndarray, labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    colours = palette[labels].astype(np.float32)
    out = image.astype(np.float32)
    fg = labels > 0
    out[fg] = 0.45 * out[fg] + 0.55 * colours[fg]
    return out.astype(np.uint8)


router = APIRouter()


@router.post(
    "/segment",
    tags=["segmentation"],
    responses={200: {"content": {"image/png": {}, "application/json": {}}, "headers": review.OPENAPI}},
    openapi_extra=openapi_body({"image": "photo (JPEG, PNG or WebP)"}, ("image",), SegmentParams),
)
async def segment(request: Request, settings: Settings = Depends(current_settings), run: Pipeline = Depends(pipeline)):
    """Parse a photo into classes; parameters may be query or form fields. Every answer says how far
    to trust it: `X-Quality` (the predicted person IoU or, for fashion, mean IoU of this photo's parsing)
    and `X-Needs-Review`; the JSON format also has them as `quality` and `needs_review`."""
    params, image = await read_photo_request(request, SegmentParams, settings, run)
    assess = Assessment()
    labels = await segment_photo(
        image,
        **params.pipeline_args(),
        infer=infer_with(run.network, SEGMENTATION, params.task),
        first=infer_with(run.network, SEGMENTATION, params.task, "cut"),
        infer_crops=infer_with(run.network, SEGMENTATION_CROPS, params.task),
        pose=infer_with(run.network, POSE),
        pose_ahead=settings.pose_ahead_when_idle and run.alone,
        cpu=run.cpu,
        stage=run.stage,
        assess=assess,
    )
    trust = review.verdict(assess, settings)
    classes, palette = TASKS[params.task]
    with run.stage("encode"):
        if params.format == "overlay":
            body = await run.cpu(lambda: encode_png(overlay(image, labels, palette)))
        else:
            body = await run.cpu(encode_palette_png, labels, palette)
    if params.format != "json":
        return Response(body, media_type="image/png", headers=review.headers(trust))
    counts = np.bincount(labels.ravel(), minlength=len(classes)) / labels.size
    return JSONResponse(
        {
            "task": params.task,
            "classes": list(classes),
            "width": int(image.shape[1]),
            "height": int(image.shape[0]),
            "class_fractions": {name: round(float(f), 6) for name, f in zip(classes, counts)},
            "mask_png": base64.b64encode(body).decode(),
            "quality": trust["quality"],
            "needs_review": trust["needs_review"],
            "timings_ms": {k: round(v, 2) for k, v in run.timings.ms.items()},
        },
        headers=review.headers(trust),
    )


app = create_app(
    service("segmentation"),
    "Fashion Pixel segmentation",
    router,
    "Person/background and fashion parsing (background, skin, hair, t-shirt, shoes, pants, dress).",
)
app.include_router(demo.router)
