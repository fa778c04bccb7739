"""POST /v1/pose: 18 OpenPose-order body keypoints of the person in a photo.
POST /v1/pose-transfer: the person of one photo rendered in the pose of another photo or of keypoints.

    uvicorn services.pose_transfer.app:app --port 8083
"""

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from fashionpixel.keypoints import estimate
from fashionpixel.models import POSE, POSE_CROPS, POSE_TRANSFER
from fashionpixel.networks import infer_with
from fashionpixel.pose import KEYPOINTS, draw_pose
from fashionpixel.pose_transfer import transfer
from fashionpixel.quality import Assessment
from services.catalog import service
from services.common import review
from services.common.app import create_app
from services.common.errors import Problem
from services.common.forms import keypoints_array, openapi_body, parse_json, read_photo_request, read_upload, text_field
from services.common.imaging import check_size, decode_rgb, encode_png
from services.common.pipeline import Pipeline, pipeline
from services.common.settings import Settings, current_settings


class PoseParams(BaseModel):
    format: str = Field(
        "json",
        pattern="^(json|png)$",
        description="json: keypoints; png: the OpenPose-style limb image of the photo's size",
    )
    focus: bool = Field(
        True,
        description="a second network pass on a crop around a person who fills little of the photo "
        "(a wide shot, a small figure on a padded canvas)",
    )


class PoseResponse(BaseModel):
    format: str = Field("openpose18", description="keypoint order: OpenPose COCO-18")
    width: int
    height: int
    keypoints: list[list[float]] = Field(description="18 × [x, y, score]; not found = [-1, -1, 0]")
    names: list[str] = Field(description="the keypoint names, in order")
    quality: float = Field(
        ge=0, le=1, description="the pose as a whole: its predicted PCK@0.1 (docs/models/quality.md); also X-Quality"
    )
    needs_review: bool = Field(description="quality below the pose's REVIEW_THRESHOLD; also X-Needs-Review")


router = APIRouter()


@router.post(
    "/pose",
    tags=["pose"],
    response_model=PoseResponse,
    responses={200: {"content": {"image/png": {}}, "headers": review.OPENAPI}},
    openapi_extra=openapi_body({"image": "photo (JPEG, PNG or WebP)"}, ("image",), PoseParams),
)
async def pose(request: Request, settings: Settings = Depends(current_settings), run: Pipeline = Depends(pipeline)):
    """Estimate the 18 body keypoints of the person in the photo, in the photo's pixel coordinates,
    each with its score, and the pose's overall `quality` (predicted PCK@0.1) and `needs_review`."""
    params, image = await read_photo_request(request, PoseParams, settings, run)
    h, w = image.shape[:2]
    assess = Assessment()
    k = await estimate(
        image,
        infer=infer_with(run.network, POSE),
        cpu=run.cpu,
        stage=run.stage,
        assess=assess,
        focus=params.focus,
        infer_crops=infer_with(run.network, POSE_CROPS),
    )
    trust = review.verdict(assess, settings)
    if params.format == "png":
        with run.stage("encode"):
            body = await run.cpu(lambda: encode_png(draw_pose(k, w, h, min_score=0)))
        return Response(body, media_type="image/png", headers=review.headers(trust))
    answer = PoseResponse(
        width=w,
        height=h,
        names=list(KEYPOINTS),
        keypoints=[[round(float(x), 2), round(float(y), 2), round(float(s), 4)] for x, y, s in k],
        quality=trust["quality"],
        needs_review=trust["needs_review"],
    )
    return JSONResponse(answer.model_dump(), headers=review.headers(trust))


def parse_target_keypoints(text: str, settings: Settings):
    """`target_keypoints`: {"width", "height", "keypoints": 18 × [x, y] or [x, y, score]} → (18×3, (w, h))."""
    value = parse_json(text, "target_keypoints")
    size = (value.get("width"), value.get("height")) if isinstance(value, dict) else (None, None)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in size):
        raise Problem(
            422,
            "target_keypoints: needs integer width and height (the target canvas) and keypoints",
            type_="/problems/invalid-parameters",
        )
    w, h = size
    check_size(w, h, settings, "target_keypoints")
    return keypoints_array(value, w, h, "target_keypoints"), (w, h)


@router.post(
    "/pose-transfer",
    tags=["pose"],
    responses={200: {"content": {"image/png": {}}, "headers": review.OPENAPI}},
    openapi_extra=openapi_body(
        {
            "source": "photo of the person and garments to render (JPEG, PNG or WebP)",
            "target": "photo whose pose is used; the output has its size",
        },
        ("source",),
        text_fields={
            "target_keypoints": 'instead of target: JSON {"width", "height", "keypoints": '
            "18 × [x, y] or [x, y, score]} (-1 = missing)"
        },
    ),
)
async def pose_transfer(
    request: Request, settings: Settings = Depends(current_settings), run: Pipeline = Depends(pipeline)
):
    """The source person in the target pose on white: RGB PNG of the target's size. `X-Quality` /
    `X-Needs-Review`: of the weakest part it was built from (the source's person mask, parsing and pose;
    a target photo's pose)."""
    upload = await read_upload(request, settings, ("source", "target", "target_keypoints"))
    keypoints_text = text_field(upload, "target_keypoints")
    target_bytes = upload.files.get("target")
    if (target_bytes is None) == (keypoints_text is None):
        raise Problem(
            422,
            "send exactly one of 'target' (a photo) and 'target_keypoints' (JSON)",
            type_="/problems/invalid-parameters",
        )
    with run.stage("decode"):
        source = await run.cpu(decode_rgb, upload.file("source"), settings, "source")
        target, target_kp, size = None, None, None
        if target_bytes is not None:
            target = await run.cpu(decode_rgb, target_bytes, settings, "target")
        else:
            target_kp, size = parse_target_keypoints(keypoints_text, settings)
    network = run.network
    assess = Assessment()
    rgb = await transfer(
        source,
        target=target,
        target_keypoints=target_kp,
        target_size=size,
        network=network,
        generate=infer_with(network, POSE_TRANSFER),
        cpu=run.cpu,
        stage=run.stage,
        assess=assess,
    )
    return await run.image(rgb, review.headers(review.verdict(assess, settings)))


app = create_app(
    service("pose-transfer"),
    "Fashion Pixel pose and pose transfer",
    router,
    "18-keypoint pose estimation (OpenPose COCO-18 order) and ADGAN-style pose transfer.",
)
