"""POST /v1/skin: regenerate a person's skin with the pix2pix generator, as the API contract says.

    uvicorn services.skin.app:app --port 8082

The segmentation and pose models (through Triton) derive what the client does not send: the person,
the skin region (parsing) and the keypoints; the skin model then paints the region.
"""
from fastapi import APIRouter, Request
from fastapi.responses import Response

from fashionpixel.skin import regenerate
from services.common.app import create_app, run_cpu, timings
from services.common.errors import Problem
from services.common.forms import openapi_body, parse_keypoints, read_upload, text_field
from services.common.imaging import decode_grey, decode_rgb, encode_png
from services.common.networks import parse_and_pose

MODELS = ("segmentation", "pose", "skin")


router = APIRouter()


@router.post("/skin", tags=["skin"], responses={200: {"content": {"image/png": {}}}},
             openapi_extra=openapi_body(
                 {"image": "photo of a dressed person (JPEG, PNG or WebP)",
                  "skin_mask": "optional grey PNG of the photo's size, 255 = region to generate"},
                 ("image",), text_fields={"keypoints": "optional JSON: 18 keypoints as /v1/pose returns them"}))
async def skin(request: Request):
    """The person with regenerated skin, RGBA PNG of the photo's size, alpha = person silhouette."""
    t = timings(request)
    settings = request.app.state.settings
    upload = await read_upload(request, settings, ("image", "skin_mask", "keypoints"))
    with t.stage("decode"):
        image = await run_cpu(request, decode_rgb, upload.file("image"), settings)
        h, w = image.shape[:2]
        region = None
        if (mask_bytes := upload.file("skin_mask", required=False)) is not None:
            mask = await run_cpu(request, decode_grey, mask_bytes, settings, "skin_mask")
            if mask.shape != (h, w):
                raise Problem(422, f"skin_mask is {mask.shape[1]}×{mask.shape[0]}, the image {w}×{h}",
                              type_="/problems/invalid-parameters")
            region = mask > 127
        keypoints_text = text_field(upload, "keypoints")
        keypoints = parse_keypoints(keypoints_text, w, h) if keypoints_text is not None else None
    triton = request.app.state.triton
    parse, pose = parse_and_pose(triton)

    async def generate(x):
        return (await triton.infer("skin", {"inputs": x[None]}, ["image"]))["image"][0]

    rgba = await regenerate(image, keypoints=keypoints, region=region, parse=parse, pose=pose, generate=generate,
                            cpu=lambda fn, *a: run_cpu(request, fn, *a), stage=t.stage)
    with t.stage("encode"):
        body = await run_cpu(request, encode_png, rgba)
    return Response(body, media_type="image/png")


app = create_app("skin-generation", "Fashion Pixel skin generation", list(MODELS), router,
                 "Regenerates the visible skin of a dressed person (pix2pix: U-Net generator, PatchGAN).")
