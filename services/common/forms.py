"""Multipart uploads: image fields plus parameters that may come as query or form fields.

Each endpoint describes its parameters with one pydantic model; this module reads the body with the
contract's limits, validates the parameters (→ 422) and documents both in the OpenAPI schema.
"""

import json
from typing import TypeVar

import numpy as np
from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from services.common.errors import Problem
from services.common.imaging import decode_rgb
from services.common.pipeline import Pipeline
from services.common.settings import Settings

P = TypeVar("P", bound=BaseModel)


def openapi_body(
    files: dict[str, str],
    required: tuple[str, ...],
    params: type[BaseModel] | None = None,
    text_fields: dict[str, str] | None = None,
) -> dict:
    """`openapi_extra` for a multipart body with the given file fields, text fields and parameters."""
    props: dict = {name: {"type": "string", "format": "binary", "description": desc} for name, desc in files.items()}
    props |= {name: {"type": "string", "description": desc} for name, desc in (text_fields or {}).items()}
    if params is not None:
        for name, schema in params.model_json_schema().get("properties", {}).items():
            props[name] = schema
    schema = {"type": "object", "properties": props, "required": list(required)}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


class Upload:
    """The parsed body: file fields as bytes, text fields as strings."""

    def __init__(self, files: dict[str, bytes], fields: dict[str, str]):
        self.files, self.fields = files, fields

    def file(self, name: str, required: bool = True) -> bytes | None:
        if name in self.files:
            return self.files[name]
        if name in self.fields:
            raise Problem(422, f"field '{name}' must be a file upload", type_="/problems/invalid-parameters")
        if required:
            raise Problem(422, f"multipart field '{name}' is required", type_="/problems/invalid-parameters")
        return None


async def read_upload(request: Request, settings: Settings, file_fields: tuple[str, ...]) -> Upload:
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise Problem(415, "send multipart/form-data with the image as a file field", type_="/problems/not-multipart")
    try:
        form = await request.form(max_files=len(file_fields) + 2, max_fields=32)
    except Problem:
        raise
    except Exception as exc:
        raise Problem(400, f"malformed multipart body: {exc}", type_="/problems/bad-multipart") from None
    files, fields = {}, {}
    try:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key in file_fields:
                    data = await value.read(settings.max_upload_bytes + 1)
                    if len(data) > settings.max_upload_bytes:
                        raise Problem(
                            413, f"field '{key}' exceeds {settings.max_upload_bytes} bytes", type_="/problems/too-large"
                        )
                    files[key] = data
            else:
                fields[key] = value
    finally:
        await form.close()
    return Upload(files, fields)


def parse_params(model: type[P], request: Request, upload: Upload | None) -> P:
    """Parameters from the query string, overridden by form fields of the same name (→ 422 if invalid)."""
    names = model.model_fields.keys()
    raw = {k: v for k, v in request.query_params.items() if k in names}
    if upload is not None:
        raw |= {k: v for k, v in upload.fields.items() if k in names}
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        raise Problem(
            422,
            "invalid parameters: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors),
            type_="/problems/invalid-parameters",
            extra={"errors": errors},
        ) from None


async def read_photo_request(
    request: Request, params_model: type[P], settings: Settings, run: Pipeline
) -> tuple[P, np.ndarray]:
    """The common start of an image endpoint: the multipart body, its parameters, the decoded photo."""
    upload = await read_upload(request, settings, ("image",))
    params = parse_params(params_model, request, upload)
    data = upload.file("image")
    with run.stage("decode"):
        image = await run.cpu(decode_rgb, data, settings)
    return params, image


def parse_json(text: str, field: str):
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise Problem(422, f"{field}: not valid JSON", type_="/problems/invalid-parameters") from None


def parse_keypoints(text: str, width: int, height: int, field: str = "keypoints") -> np.ndarray:
    """`keypoints` as /v1/pose returns it (the object, or its list): 18 × [x, y] or [x, y, score]
    → 18×3 float (x, y, score) clipped to the width×height canvas; not found = (-1, -1, -1)."""
    return keypoints_array(parse_json(text, field), width, height, field)


def keypoints_array(value, width: int, height: int, field: str) -> np.ndarray:
    def bad(why: str):
        return Problem(422, f"{field}: {why}", type_="/problems/invalid-parameters")

    if isinstance(value, dict):
        value = value.get("keypoints")
    if not isinstance(value, list) or len(value) != 18:
        raise bad("expected 18 keypoints, as /v1/pose returns them")
    out = np.full((18, 3), -1.0, np.float32)
    for i, point in enumerate(value):
        if (
            not isinstance(point, list)
            or len(point) not in (2, 3)
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in point)
        ):
            raise bad(f"keypoint {i} must be [x, y] or [x, y, score] numbers")
        x, y, score = float(point[0]), float(point[1]), float(point[2]) if len(point) == 3 else 1.0
        if not all(np.isfinite((x, y, score))):
            raise bad(f"keypoint {i} is not finite")
        if x >= 0 and y >= 0 and score > 0:  # -1 (or a zero score) = not found
            out[i] = (min(x, width - 1), min(y, height - 1), score)
    return out


def text_field(upload: Upload, name: str) -> str | None:
    """A field that may come as form text or as a file part."""
    if name in upload.fields:
        return upload.fields[name]
    if name in upload.files:
        try:
            return upload.files[name].decode("utf-8")
        except UnicodeDecodeError:
            raise Problem(422, f"{name}: not UTF-8 text", type_="/problems/invalid-parameters") from None
    return None
