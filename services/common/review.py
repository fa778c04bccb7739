"""How far to trust a result, as the contract asks of every /v1/* answer: X-Quality (the predicted
IoU / Dice / PCK of the result, or of the weakest mask or keypoints it was built from) and
X-Needs-Review (a part below its task's REVIEW_THRESHOLD); JSON answers carry `quality` and
`needs_review` too. The prediction is fashionpixel/quality.py's, from what the pipeline held."""

from fashionpixel.quality import Assessment
from services.common.settings import Settings

HEADERS = ("X-Quality", "X-Needs-Review", "X-Quality-Parts")


def verdict(assess: Assessment, settings: Settings) -> dict:
    """{"quality": 0..1, "needs_review": bool, "parts": {part: quality}} of a pipeline's assessment."""
    parts = assess.qualities()
    return {
        "quality": round(min(parts.values()), 4),
        "needs_review": assess.needs_review(settings.review_thresholds),
        "parts": {part: round(q, 4) for part, q in parts.items()},
    }


def headers(v: dict) -> dict[str, str]:
    """The verdict as response headers; X-Quality-Parts lists each part's quality (person, fashion,
    pose, target pose, ...) for results built from several."""
    return {
        "X-Quality": f"{v['quality']:.4f}",
        "X-Needs-Review": "true" if v["needs_review"] else "false",
        "X-Quality-Parts": ",".join(f"{part}={q:.4f}" for part, q in v["parts"].items()),
    }


OPENAPI = {  # a response's headers, for the OpenAPI description of every /v1/* endpoint
    "X-Quality": {
        "description": "0..1: the predicted IoU / Dice / PCK@0.1 of this result, or of the weakest mask or "
        "keypoints it was built from (docs/models/quality.md)",
        "schema": {"type": "string", "example": "0.9312"},
    },
    "X-Needs-Review": {
        "description": "true when a part's quality is below its task's REVIEW_THRESHOLD (chosen on validation photos)",
        "schema": {"type": "string", "enum": ["true", "false"]},
    },
    "X-Quality-Parts": {
        "description": "each part's quality: person, fashion, cutout, pose, target_pose",
        "schema": {"type": "string", "example": "person=0.9312,pose=0.8811"},
    },
}
