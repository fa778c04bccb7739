"""POST /v1/cutout: a garment's matte and transparent PNG (or WebP), as the API contract says.

uvicorn services.cutout.app:app --port 8081
"""

from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, model_validator

from fashionpixel import matting
from fashionpixel.cutout import GARMENTS, REFINEMENTS, compose, crop_region, matte
from fashionpixel.models import CUTOUT, POSE
from fashionpixel.networks import infer_with
from fashionpixel.quality import Assessment
from services.catalog import service
from services.common import review
from services.common.app import create_app
from services.common.forms import openapi_body, read_photo_request
from services.common.pipeline import Pipeline, pipeline
from services.common.settings import Settings, current_settings


class CutoutParams(BaseModel):
    """`focus` and `refine` go beyond the contract; their defaults come from docs/models/cutout.md."""

    garment: Literal[GARMENTS] = Field("all", description="top, bottom, dress, shoes, or all: their union")
    format: Literal["rgba", "mask"] = Field("rgba", description="rgba: photo + alpha PNG; mask: 8-bit grey PNG")
    crop: bool = Field(False, description="crop to the garment's bounding box plus a small margin")
    bg: str | None = Field(
        None,
        pattern=r"^#?[0-9a-fA-F]{6}$",
        description="hex colour (e.g. #ffffff): flatten onto it instead of transparency",
    )
    focus: bool = Field(
        True,
        description="a second pass on a crop around the outfit when it fills at most a quarter of the photo "
        "(a small person in a wide or padded shot): Dice of all 0.31 -> 0.53 there, no change elsewhere",
    )
    refine: Literal[REFINEMENTS] = Field(
        "guided", description="edge refinement: guided filter, closed-form alpha matting, or none"
    )
    clear: bool = Field(
        False,
        description="format=rgba: colour 0 under fully transparent pixels (as rembg does). Nothing shows there; "
        "a 3000x4500 cutout's PNG is ~3x smaller and ~1.5x faster to encode. Off: the photo's colours everywhere, "
        "as the contract says (a retoucher can widen the matte later)",
    )
    output: Literal["png", "webp"] = Field(
        "png",
        description="file format of format=rgba: png, or webp (lossy colour at quality 90, the alpha lossless: "
        "the same matte as the PNG's, a fraction of its bytes; at most 16383 pixels a side)",
    )

    @model_validator(mode="after")
    def _bg_needs_rgba(self):
        if self.bg is not None and self.format != "rgba":
            raise ValueError("bg applies to format=rgba only")
        if self.output != "png" and self.format != "rgba":
            raise ValueError("output=webp applies to format=rgba only (the mask is a grey PNG)")
        return self

    def background(self) -> tuple[int, int, int] | None:
        if self.bg is None:
            return None
        h = self.bg.lstrip("#")
        return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


router = APIRouter()


@router.post(
    "/cutout",
    tags=["cutout"],
    responses={200: {"content": {"image/png": {}, "image/webp": {}}, "headers": review.OPENAPI}},
    openapi_extra=openapi_body({"image": "photo (JPEG, PNG or WebP)"}, ("image",), CutoutParams),
)
async def cutout(request: Request, settings: Settings = Depends(current_settings), run: Pipeline = Depends(pipeline)):
    """Cut a garment group out of a photo. Headers: `X-Garment-Fraction` (share of the photo's pixels
    in the matte), with `crop` `X-Crop-Box` (`x,y,width,height` in the photo), and how far to trust the
    matte: `X-Quality` (its predicted Dice) and `X-Needs-Review`. The RGBA answer's colour is 0 where
    its alpha is 0 (nothing shows there; the file is smaller and faster to make); `output=webp` answers
    `image/webp` instead of `image/png`."""
    params, image = await read_photo_request(request, CutoutParams, settings, run)
    assess = Assessment()
    alpha = await matte(
        image,
        params.garment,
        focus=params.focus,
        refine=params.refine,
        infer=infer_with(run.network, CUTOUT),
        cpu=run.cpu,
        stage=run.stage,
        assess=assess,
        pose=infer_with(run.network, POSE),
    )
    headers = {"X-Garment-Fraction": f"{float(alpha.mean()):.6f}"} | review.headers(review.verdict(assess, settings))
    with run.stage("encode"):
        out = await run.cpu(compose, image, alpha, params.format, params.background(), params.clear)
        region = crop_region(alpha) if params.crop else None
        if region is not None:  # nothing found: the whole (empty) image rather than an error
            out = out[region.y0 : region.y1, region.x0 : region.x1]
            headers["X-Crop-Box"] = f"{region.x0},{region.y0},{region.x1 - region.x0},{region.y1 - region.y0}"
    return await run.image(out, headers, params.output)


app = create_app(
    service("cutout"),
    "Fashion Pixel cutout",
    router,
    "Garment mattes and transparent PNGs (or WebPs: `output=webp`) per garment group (top, bottom, dress, shoes, all).",
    on_shutdown=matting.WORKER.shutdown,
)
