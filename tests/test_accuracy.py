"""Accuracy of the served model, end to end over HTTP, on real validation photos.

The floors are the validation numbers in docs/models/segmentation.md minus a margin for the
service's default post-processing and for run-to-run noise; a regression below them fails.
"""

import io

import numpy as np
import pytest
from PIL import Image

from fashionpixel.labels import FASHION_CLASSES, PERSON_CLASSES
from training.metrics import confusion, summarize

pytestmark = [pytest.mark.slow, pytest.mark.data]

FLOORS = {"person": 0.91, "fashion": 0.57}  # measured 0.9385 / 0.604 with the default CRF


@pytest.mark.parametrize("task", ["person", "fashion"])
def test_served_model_mean_iou_on_fashionista_validation(seg, data_dir, task):
    from training.datasets import fashionista_samples, read_labels

    samples = [s for s in fashionista_samples() if s.split == "val"]
    assert len(samples) >= 50
    names = PERSON_CLASSES if task == "person" else FASHION_CLASSES
    cm = np.zeros((len(names), len(names)), np.int64)
    for s in samples:
        r = seg.post(
            "/v1/segment", params={"task": task}, files={"image": (s.image.name, s.image.read_bytes(), "image/jpeg")}
        )
        assert r.status_code == 200
        pred = np.asarray(Image.open(io.BytesIO(r.content)))
        truth = read_labels(s)[0 if task == "person" else 1]
        cm += confusion(pred, truth, len(names))
    result = summarize(cm, names)
    print(task, result)
    assert result["mean_iou"] >= FLOORS[task], result


# Issue 20: product photos are framed tighter than street photos. The validation photos cropped
# waist-up (training/framing.py) and sent as JPEGs, scored against the labels cropped alike. The crop
# specialist answers them (docs/models/segmentation.md, "The crop specialist": 0.885 / 0.518 measured
# in-process; the general network alone 0.677 / 0.245).
WAIST_UP_FLOORS = {"person": 0.85, "fashion": 0.47}


@pytest.mark.parametrize("task", ["person", "fashion"])
def test_served_model_mean_iou_on_waist_up_crops(seg, data_dir, task):
    from training.datasets import fashionista_samples, label_maps
    from training.framing import framed_photos

    samples = [s for s in fashionista_samples() if s.split == "val"]
    names = PERSON_CLASSES if task == "person" else FASHION_CLASSES
    cm = np.zeros((len(names), len(names)), np.int64)

    for s, image, labels, _ in framed_photos("waist-up", samples, label_maps):
        body = io.BytesIO()
        Image.fromarray(image).save(body, "JPEG", quality=95)
        r = seg.post("/v1/segment", params={"task": task}, files={"image": ("crop.jpg", body.getvalue(), "image/jpeg")})
        assert r.status_code == 200
        cm += confusion(np.asarray(Image.open(io.BytesIO(r.content))), labels[task], len(names))
    result = summarize(cm, names)
    print(task, "waist-up", result)
    assert result["mean_iou"] >= WAIST_UP_FLOORS[task], result
