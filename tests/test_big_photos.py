"""Big product photos (issue 23): the cutout's edge work on the garment's box only gives the alpha that
working on the whole photo gave; the clear colour under transparent pixels; the PNG and WebP encoders.
Pure functions, in-process (the cutout network through ONNX Runtime): no Triton needed."""

import asyncio
import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fashionpixel import cutout
from tests.images import synthetic_photo

REPO = Path(__file__).resolve().parent.parent
BIG = (3000, 4500)  # a product photo as shops upload them (worked on at 1633×2449)


def whole_photo_refine(image: np.ndarray, prob: np.ndarray, method: str, threshold: float = cutout.THRESHOLD):
    """refine_edges as it was before the garment's box: every filter over the whole photo (the control)."""
    mask = (prob >= threshold).astype(np.uint8)
    if method == "none" or not mask.any():
        return mask.astype(np.float32)
    h, w = mask.shape
    radius = cutout.edge_radius(w, h)
    inside, reach = cutout._band(mask, radius)
    if method == "guided":
        soft = cv2.ximgproc.guidedFilter(image, mask.astype(np.float32), radius, (0.05 * 255) ** 2)
    else:
        soft = cutout._matting(image, inside, reach)
    return np.where(inside, 1.0, np.where(reach, np.clip(soft, 0.0, 1.0), 0.0)).astype(np.float32)


@pytest.fixture(scope="module")
def cutout_infer():
    from export.onnxruntime_session import onnx_session
    from fashionpixel.models import CUTOUT
    from fashionpixel.networks import OnnxNetwork, infer_with

    network = OnnxNetwork({CUTOUT.name: onnx_session(CUTOUT.onnx_path(REPO / "model_repository"), threads=2)})
    return infer_with(network, CUTOUT)


def matte(image, infer, refine: str, garment: str = "all") -> np.ndarray:
    from fashionpixel.stages import inline, untimed

    return asyncio.run(cutout.matte(image, garment, focus=True, refine=refine, infer=infer, cpu=inline, stage=untimed))


def test_box_refinement_equals_the_whole_photo_on_synthetic_shapes():
    """Masks at the photo's border, in a corner, tiny, and none: the box is clipped like the photo."""
    image = synthetic_photo(240, 360)
    # (matting needs some background and some inside: pymatting refuses a trimap without, either way)
    both = ("none", "guided", "matting")
    cases = [((0, 0, 240, 360), both[:2]), ((0, 0, 30, 40), both), ((200, 300, 240, 360), both)]
    cases += [((100, 150, 103, 152), both[:2]), ((60, 0, 180, 200), both)]
    for (x0, y0, x1, y1), methods in cases:
        prob = np.zeros((360, 240), np.float32)
        prob[y0:y1, x0:x1] = 1.0
        for method in methods:
            band = cutout.refine_edges(image, prob, method)
            assert np.array_equal(band, whole_photo_refine(image, prob, method)), (x0, y0, method)
    assert not cutout.refine_edges(image, np.zeros((360, 240), np.float32), "guided").any()


@pytest.mark.data
@pytest.mark.parametrize("name", ["0001", "0222", "1600"])
def test_box_refinement_equals_the_whole_photo_on_real_photos(data_dir, cutout_infer, monkeypatch, name):
    """The whole cutout (network, focus pass, edges, upscale to the photo) with the edge work on the
    garment's box, against the same with it on the whole photo: the same alpha, at the photo's own
    size and enlarged to 3000×4500, for the guided filter and for matting."""
    photo = np.asarray(Image.open(data_dir / "ccp" / "photos" / f"{name}.jpg").convert("RGB"))
    big = cv2.resize(photo, BIG, interpolation=cv2.INTER_CUBIC)
    for image in (photo, big):
        for method in ("guided", "matting") if image is photo else ("guided",):
            band = matte(image, cutout_infer, method)
            with monkeypatch.context() as m:
                m.setattr(cutout, "refine_edges", whole_photo_refine)
                whole = matte(image, cutout_infer, method)
            assert band.shape == image.shape[:2]
            assert ((band > 0) & (band < 1)).any()  # there is a soft edge to compare
            diff = float(np.abs(band - whole).max())
            assert diff <= 1e-6, (name, image.shape, method, diff)  # measured: 0.0 (bit-identical)


def test_compose_clears_colour_only_where_nothing_shows():
    image = synthetic_photo(40, 60)
    alpha = np.zeros((60, 40), np.float32)
    alpha[10:20, 10:20] = 1
    alpha[25, 5:35] = np.linspace(0.001, 0.999, 30)  # soft: a little of the colour shows, so it stays
    kept = cutout.compose(image, alpha, "rgba", None)
    assert np.array_equal(kept[..., :3], image)  # the default keeps every colour (the pure function)
    cleared = cutout.compose(image, alpha, "rgba", None, clear=True)
    assert np.array_equal(cleared[..., 3], kept[..., 3]) and cleared.dtype == np.uint8
    shows = cleared[..., 3] > 0
    assert np.array_equal(cleared[shows, :3], image[shows]) and not cleared[~shows, :3].any()
    nothing = cutout.compose(image, np.zeros_like(alpha), "rgba", None, clear=True)
    assert nothing.shape == (60, 40, 4) and not nothing.any()
    # the grey alpha is np.round(alpha * 255), halves included
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.random(2000), (np.arange(511) / 2 / 255), [0.0, 1.0]]).astype(np.float32)
    soft = np.resize(values, (60, 40))
    assert np.array_equal(cutout.compose(image, soft, "mask", None), np.round(soft * 255).astype(np.uint8))
    # mask and a flattened background do not depend on it
    for output, bg in (("mask", None), ("rgba", (255, 255, 255))):
        assert np.array_equal(
            cutout.compose(image, alpha, output, bg, clear=True), cutout.compose(image, alpha, output, bg)
        )


def test_png_and_webp_encoders_keep_what_they_must():
    from services.common.errors import Problem
    from services.common.imaging import WEBP_MAX_SIDE, encode_png, encode_webp

    rgb = synthetic_photo(120, 180)
    alpha = np.zeros((180, 120), np.uint8)
    alpha[40:140, 30:90] = 255
    alpha[60:70, 20:100] = np.arange(80, dtype=np.uint8)[None] * 3  # soft values
    rgba = np.dstack([rgb, alpha])
    for image in (rgb, rgba, alpha):  # PNG: every pixel as it was
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(encode_png(image)))), image)
    webp = Image.open(io.BytesIO(encode_webp(rgba)))
    assert webp.format == "WEBP" and webp.mode == "RGBA" and webp.size == (120, 180)
    out = np.asarray(webp)
    assert np.array_equal(out[..., 3], alpha)  # lossless alpha
    assert np.abs(out[..., :3].astype(int) - rgb)[alpha > 0].mean() < 8  # lossy colour, close (on a noise texture)
    with pytest.raises(Problem) as e:
        encode_webp(np.zeros((8, WEBP_MAX_SIDE + 1, 4), np.uint8))
    assert e.value.status == 422
