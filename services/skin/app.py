"""POST /v1/skin: regenerate a person's skin with the pix2pix generator, as the API contract says.

    uvicorn services.skin.app:app --port 8082

The segmentation and pose models (through Triton) derive what the client does not send: the person,
the skin region (parsing) and the keypoints, read as /v1/segment and /v1/pose read them (crop
specialists included: fashionpixel/reading.py); the skin model then paints the region.
"""

from fastapi import APIRouter, Depends, Request

from fashionpixel.models import SKIN
from fashionpixel.networks import infer_with
from fashionpixel.quality import Assessment
from fashionpixel.skin import regenerate
from services.catalog import service
from services.common import review
from services.common.app import create_app
from services.common.errors import Problem
from services.common.forms import openapi_body, parse_keypoints, read_upload, text_field
from services.common.imaging import decode_grey, decode_rgb
from services.common.pipeline import Pipeline, pipeline
from services.common.settings import Settings, current_settings

router = APIRouter()


@router.post(
    "/skin",
    tags=["skin"],
    responses={200: {"content": {"image/png": {}}, "headers": review.OPENAPI}},
    openapi_extra=openapi_body(
        {
            "image": "photo of a dressed person (JPEG, PNG or WebP)",
            "skin_mask": "optional grey PNG of the photo's size, 255 = region to generate",
        },
        ("image",),
        text_fields={"keypoints": "optional JSON: 18 keypoints as /v1/pose returns them"},
    ),
)
async def skin(request: Request, settings: Settings = Depends(current_settings), run: Pipeline = Depends(pipeline)):
    """The person with regenerated skin, RGBA PNG of the photo's size, alpha = person silhouette.
    `X-Quality` / `X-Needs-Review`: of the weakest part it derived (person mask, parsing, pose)."""
    upload = await read_upload(request, settings, ("image", "skin_mask", "keypoints"))
    with run.stage("decode"):
        image = await run.cpu(decode_rgb, upload.file("image"), settings)
        h, w = image.shape[:2]
        region = None
        if (mask_bytes := upload.file("skin_mask", required=False)) is not None:
            mask = await run.cpu(decode_grey, mask_bytes, settings, "skin_mask")
            if mask.shape != (h, w):
                raise Problem(
                    422,
                    f"skin_mask is {mask.shape[1]}×{mask.shape[0]}, the image {w}×{h}",
                    type_="/problems/invalid-parameters",
                )
            region = mask > 127
        keypoints_text = text_field(upload, "keypoints")
        keypoints = parse_keypoints(keypoints_text, w, h) if keypoints_text is not None else None
    assess = Assessment()
    rgba = await regenerate(
        image,
        keypoints=keypoints,
        region=region,
        network=run.network,
        generate=infer_with(run.network, SKIN),
        cpu=run.cpu,
        stage=run.stage,
        assess=assess,
    )
    return await run.image(rgba, review.headers(review.verdict(assess, settings)))


app = create_app(
    service("skin-generation"),
    "Fashion Pixel skin generation",
    router,
    "Regenerates the visible skin of a dressed person (pix2pix: U-Net generator, PatchGAN).",
)
