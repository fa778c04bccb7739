"""The comparison architectures (training/models/segmentation_archs.py): SegNet's interface, U²-Net's
side outputs, ONNX export with ONNX Runtime agreeing, and the training → export → evaluation commands."""

import json
import subprocess
import sys

import pytest
import torch

from export.export_segmentation import PARITY_ATOL
from export.onnx_tools import export_onnx, parity
from tests.conftest import REPO
from training.models.segmentation import SegNetServing, channel_softmax
from training.models.segmentation_archs import ARCHITECTURES, U2Net

ARCHS = list(ARCHITECTURES)


def build(arch: str, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return ARCHITECTURES[arch](**kw)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("size", [(96, 64), (100, 70)])  # odd sizes too: pooling and upsampling line up
def test_one_logits_map_per_head_at_the_input_size(arch, size):
    net = build(arch).eval()
    assert net.head_names == ("person", "fashion")
    assert hasattr(net, "person_head") and hasattr(net, "fashion_head")
    with torch.no_grad():
        person, fashion = net(torch.randn(1, 3, *size))
    assert person.shape == (1, 2, *size) and fashion.shape == (1, 7, *size)


@pytest.mark.parametrize("arch", ARCHS)
def test_heads_by_name_and_every_parameter_trains(arch):
    net = build(arch, heads={"garment": 5}).train()
    assert net.head_names == ("garment",) and hasattr(net, "garment_head") and not hasattr(net, "person_head")
    (out,) = net(torch.randn(2, 3, 96, 64))
    assert out.shape == (2, 5, 96, 64)
    out.logsumexp(1).mean().backward()
    assert [n for n, p in net.named_parameters() if p.grad is None] == []
    if arch != "segnet":  # sized for CPU training from scratch (issue 3)
        assert 0.9e6 < sum(p.numel() for p in build(arch).parameters()) < 3e6


def test_a_deeper_segnet_grows_from_a_trained_one_with_the_same_outputs():
    plain = build("segnet").eval()
    with torch.no_grad():  # BatchNorm statistics of a trained network, not the identity of a new one
        for m in plain.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1), m.running_var.uniform_(0.5, 1.5), m.weight.uniform_(0.5, 1.5)
    deep = build("segnet-deep").eval()
    deep.grow_from(plain.state_dict())
    assert len(deep.enc3) == len(plain.enc3) + 2 and len(deep.enc4) == len(plain.enc4) + 2
    x = torch.randn(1, 3, 96, 64)
    with torch.no_grad():
        for a, b in zip(plain(x), deep(x)):
            assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError, match="not a SegNet"):
        deep.grow_from(build("unet").state_dict())


def test_u2net_side_outputs_match_the_fused_ones():
    net = build("u2net").eval()
    x = torch.randn(1, 3, 96, 64)
    with torch.no_grad():
        fused, sides = net.forward_with_sides(x)
        plain = net(x)
    assert len(sides) == 6  # d1 … d5 and the bottom stage, as in U²-Net
    for a, b in zip(fused, plain):
        assert torch.allclose(a, b)
    for side in sides:
        assert [t.shape for t in side] == [t.shape for t in fused] == [(1, 2, 96, 64), (1, 7, 96, 64)]
    assert isinstance(U2Net().person_head.fuse, torch.nn.Conv2d)


@pytest.mark.parametrize("arch", ARCHS)
def test_exports_to_onnx_and_onnxruntime_agrees(arch, tmp_path):
    model = SegNetServing(build(arch)).eval()
    examples = {"image": torch.randint(0, 256, (2, 96, 64, 3), dtype=torch.uint8)}
    path = tmp_path / "model.onnx"
    export_onnx(model, examples, path, ["person", "fashion"])
    diffs = parity(model, examples, path, ["person", "fashion"], PARITY_ATOL)  # raises above the tolerance
    assert max(diffs.values()) <= PARITY_ATOL


@pytest.mark.parametrize("recorded,name", [(None, "segmentation"), ("deeplabv3plus", "segmentation_deeplabv3plus")])
def test_export_builds_the_recorded_architecture_under_its_own_name(recorded, name, tmp_path):
    """Old checkpoints (no arch recorded) are SegNet and replace the served model; others get their own."""
    from export.export_segmentation import main

    ck = tmp_path / "best.pt"
    torch.save(
        {"model": build(recorded or "segnet").state_dict()} | ({"args": {"arch": recorded}} if recorded else {}), ck
    )
    path = main(["--checkpoint", str(ck), "--repository", str(tmp_path / "repo")])
    assert path == tmp_path / "repo" / name / "1" / "model.onnx" and path.exists()
    assert f'name: "{name}"\n' in (tmp_path / "repo" / name / "config.pbtxt").read_text()
    assert (tmp_path / "repo" / name / "configs" / "gpu.pbtxt").exists()


def run(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.data
def test_u2net_trains_with_side_outputs_exports_and_evaluates(data_dir, tmp_path):
    out = tmp_path / "run"
    r = run(
        "training.train_segmentation",
        "--out",
        str(out),
        "--arch",
        "u2net",
        "--loss",
        "dice",
        "--limit",
        "24",
        "--batch",
        "2",
        "--crop",
        "96",
        "128",
        "--steps",
        "3",
        "--val-every",
        "3",
    )
    assert r.returncode == 0, r.stderr
    assert "done; best validation" in r.stdout
    args = torch.load(out / "best.pt", weights_only=False)["args"]
    assert args["arch"] == "u2net" and args["loss"] == "dice"
    other = run("training.train_segmentation", "--out", str(out), "--arch", "unet", "--limit", "24", "--steps", "3")
    assert other.returncode != 0 and "is a u2net checkpoint" in other.stderr
    repo = tmp_path / "repo"
    exported = run("export.export_segmentation", "--checkpoint", str(out / "best.pt"), "--repository", str(repo))
    assert exported.returncode == 0, exported.stderr
    model = repo / "segmentation_u2net/1/model.onnx"
    assert model.exists() and not (repo / "segmentation").exists()
    report = tmp_path / "report.json"
    evaluated = run("training.evaluate_segmentation", "--model", str(model), "--limit", "2", "--json", str(report))
    assert evaluated.returncode == 0, evaluated.stderr
    data = json.loads(report.read_text())
    assert data["model"] == str(model) and 0 <= data["results"]["none"]["fashion"]["mean_iou"] <= 1


def test_channel_softmax_is_softmax_and_exports_without_a_softmax_node(tmp_path):
    import onnx

    logits = torch.randn(2, 7, 12, 8) * 20
    assert torch.allclose(channel_softmax(logits), logits.softmax(1), atol=1e-6)
    path = tmp_path / "seg.onnx"
    export_onnx(
        SegNetServing(build("segnet")),
        {"image": torch.randint(0, 256, (1, 64, 48, 3), dtype=torch.uint8)},
        path,
        ["person", "fashion"],
    )
    assert "Softmax" not in {n.op_type for n in onnx.load(str(path)).graph.node}


class _TorchSoftmax(torch.nn.Module):
    def forward(self, x):
        return x.softmax(1)


def test_rewrite_of_an_older_export_keeps_its_answers(tmp_path):
    import onnx

    from export.rewrite_softmax import decompose_channel_softmax, outputs

    path = tmp_path / "older.onnx"
    torch.onnx.export(
        _TorchSoftmax(),
        (torch.randn(1, 7, 16, 8),),
        str(path),
        input_names=["x"],
        output_names=["y"],
        opset_version=17,
        dynamo=False,
    )
    model = onnx.load(str(path))
    x = {"x": torch.randn(1, 7, 16, 8).mul(10).numpy()}
    before = outputs(model, x)[0]
    assert decompose_channel_softmax(model) == 1
    assert "Softmax" not in {n.op_type for n in model.graph.node}
    assert abs(outputs(model, x)[0] - before).max() < 1e-6


@pytest.mark.parametrize("model", ["segmentation", "cutout"])
def test_served_models_have_no_channel_softmax(model):
    """A Softmax node on axis 1 costs ONNX Runtime a transpose there and back (38 % of the network)."""
    import onnx

    graph = onnx.load(str(REPO / "model_repository" / model / "1" / "model.onnx")).graph
    assert "Softmax" not in {n.op_type for n in graph.node}
