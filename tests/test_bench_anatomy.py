"""bench/anatomy.py's null model: the cutout's inputs and outputs with no network between them, so that
its trip through Triton is what Triton and our backend add to any call."""

import numpy as np

from bench.anatomy import NULL, write_null_model
from export.onnxruntime_session import onnx_session
from fashionpixel.models import CUTOUT


def test_the_null_model_has_the_cutouts_interface_and_copies_its_input(tmp_path):
    write_null_model(tmp_path / "model.onnx")
    session = onnx_session(tmp_path / "model.onnx", threads=1)
    assert [i.name for i in session.get_inputs()] == [t.name for t in NULL.inputs] == [t.name for t in CUTOUT.inputs]
    assert [o.name for o in session.get_outputs()] == list(CUTOUT.output_names)
    image = np.random.default_rng(0).integers(0, 255, (2, *CUTOUT.inputs[0].dims), dtype=np.uint8)
    (out,) = session.run(None, {"image": image})
    assert out.shape == (2, *CUTOUT.outputs[0].dims) and out.dtype == np.float16
    planes = image.transpose(0, 3, 1, 2).astype(np.float16)
    assert np.array_equal(out[:, :3], planes) and np.array_equal(out[:, 3:], planes[:, :2])
