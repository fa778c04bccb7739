"""GET /demo: a page where a person uploads a photo and sees every service's answer side by side.

Served by the segmentation service (port 8080). The page calls the four services from the browser, so
the other three must allow its origin (CORS_ORIGINS; `make up` sets it). GET /demo/config tells the
page where they are: DEMO_*_URL, or when unset the page's own host on the contract's default ports.
"""

from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse

from services.common.settings import Settings, current_settings

PAGE = Path(__file__).with_name("index.html")

router = APIRouter(tags=["demo"])


@router.get("/demo", include_in_schema=False)
async def demo_page():
    return FileResponse(PAGE, media_type="text/html")


@router.get("/demo/config", include_in_schema=False)
async def demo_config(s: Settings = Depends(current_settings)):
    return {
        "segmentation": "",
        "cutout": s.demo_cutout_url,
        "skin": s.demo_skin_url,
        "pose_transfer": s.demo_pose_transfer_url,
    }
