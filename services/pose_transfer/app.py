"""POST /v1/pose: 18 OpenPose-order body keypoints of the person in a photo.

    uvicorn services.pose_transfer.app:app --port 8083

POST /v1/pose-transfer (issue 7) is not built yet and is therefore absent, not faked.
"""
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from fashionpixel.keypoints import keypoints_from_heatmaps, prepare
from fashionpixel.pose import KEYPOINTS, draw_pose
from services.common.app import create_app, run_cpu, timings
from services.common.forms import openapi_body, read_photo_request
from services.common.imaging import encode_png

MODEL = "pose"


class PoseParams(BaseModel):
    format: str = Field("json", pattern="^(json|png)$",
                        description="json: keypoints; png: the OpenPose-style limb image of the photo's size")


class PoseResponse(BaseModel):
    format: str = Field("openpose18", description="keypoint order: OpenPose COCO-18")
    width: int
    height: int
    keypoints: list[list[float]] = Field(description="18 × [x, y, score]; not found = [-1, -1, 0]")
    names: list[str] = Field(description="the keypoint names, in order")


router = APIRouter()


@router.post("/pose", tags=["pose"], response_model=PoseResponse,
             responses={200: {"content": {"image/png": {}}}},
             openapi_extra=openapi_body({"image": "photo (JPEG, PNG or WebP)"}, ("image",), PoseParams))
async def pose(request: Request):
    """Estimate the 18 body keypoints of the person in the photo, in the photo's pixel coordinates."""
    t = timings(request)
    params, image = await read_photo_request(request, PoseParams)
    h, w = image.shape[:2]
    with t.stage("preprocess"):
        canvas, box = await run_cpu(request, prepare, image)
    with t.stage("infer"):
        out = await request.app.state.triton.infer(MODEL, {"image": canvas[None]}, ["heatmaps"])
    with t.stage("postprocess"):
        k = await run_cpu(request, keypoints_from_heatmaps, out["heatmaps"][0], box, w, h)
    if params.format == "png":
        with t.stage("encode"):
            body = await run_cpu(request, lambda: encode_png(draw_pose(k, w, h, min_score=0)))
        return Response(body, media_type="image/png")
    return PoseResponse(width=w, height=h, names=list(KEYPOINTS),
                        keypoints=[[round(float(x), 2), round(float(y), 2), round(float(s), 4)] for x, y, s in k])


app = create_app("pose-transfer", "Fashion Pixel pose", [MODEL], router,
                 "18-keypoint pose estimation (OpenPose COCO-18 order).")
