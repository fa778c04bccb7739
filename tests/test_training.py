"""The training, evaluation and export commands run, resume, and produce what they promise."""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO, TINY_RUN

pytestmark = [pytest.mark.slow, pytest.mark.data]


def run(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def test_segmentation_training_resumes_and_exports(data_dir, tmp_path):
    out = tmp_path / "run"
    common = [
        "training.train_segmentation",
        "--out",
        str(out),
        "--limit",
        "24",
        "--batch",
        "2",
        "--crop",
        "96",
        "128",
        "--val-every",
        "2",
    ]
    # interrupted right after its first checkpoint (step 2), then the same command again
    first = subprocess.Popen(
        [sys.executable, "-m", *common, "--steps", "60"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    for line in first.stdout:
        if line.startswith("val "):
            first.kill()
            break
    first.wait()
    assert (out / "last.pt").exists() and (out / "best.pt").exists()
    second = run(*common, "--steps", "60")
    assert second.returncode == 0, second.stderr
    assert "resumed at step" in second.stdout and "done; best validation" in second.stdout
    assert int(second.stdout.split("resumed at step ")[1].split()[0]) >= 2
    repo = tmp_path / "repo"
    exported = run("export.export_segmentation", "--checkpoint", str(out / "best.pt"), "--repository", str(repo))
    assert exported.returncode == 0, exported.stderr
    assert (repo / "segmentation/1/model.onnx").exists() and (repo / "segmentation/configs/gpu.pbtxt").exists()


def test_a_person_only_run_keeps_its_best_person_checkpoint(data_dir, tmp_path):
    r = run(
        "training.train_segmentation",
        "--out",
        str(tmp_path / "run"),
        "--limit",
        "8",
        "--batch",
        "2",
        "--crop",
        "96",
        "128",
        "--steps",
        "2",
        "--val-every",
        "2",
        "--fashion-weight",
        "0",
        "--augment",
        "light",
    )
    assert r.returncode == 0, r.stderr
    assert "best validation person_miou" in r.stdout


def test_evaluation_command_reports_metrics(data_dir, tmp_path):
    report = tmp_path / "report.json"
    r = run("training.evaluate_segmentation", "--limit", "3", "--post", "none", "minregion", "--json", str(report))
    assert r.returncode == 0, r.stderr
    data = json.loads(report.read_text())
    assert data["images"] == 3
    for variant in ("none", "minregion"):
        for task in ("person", "fashion"):
            assert 0 <= data["results"][variant][task]["mean_iou"] <= 1
    assert "mIoU" in r.stdout and "pixel acc" in r.stdout
    assert data["split"] == "val" and 0 <= data["results"]["none"]["person"]["person_errors_at_outline"] <= 1
    # the training photos, for the underfitting check
    r = run("training.evaluate_segmentation", "--limit", "2", "--split", "train", "--json", str(report))
    assert r.returncode == 0, r.stderr
    data = json.loads(report.read_text())
    assert data["split"] == "train" and data["images"] == 2 and "train split" in r.stdout


def test_cutout_trains_from_a_deeplab_segmentation_run_and_exports(data_dir, tmp_path):
    seg, cut, repo = tmp_path / "seg", tmp_path / "cut", tmp_path / "repo"
    small = ["--limit", "8", "--batch", "2", "--steps", "2", "--val-every", "2"]
    r = run("training.train_segmentation", "--out", str(seg), "--arch", "deeplabv3plus", "--crop", "96", "128", *small)
    assert r.returncode == 0, r.stderr
    wrong = run(
        "training.train_cutout",
        "--out",
        str(tmp_path / "wrong"),
        "--arch",
        "segnet",
        "--init",
        str(seg / "best.pt"),
        *small,
    )
    assert wrong.returncode != 0 and "not a segnet checkpoint" in wrong.stderr
    r = run(
        "training.train_cutout", "--out", str(cut), "--arch", "deeplabv3plus", "--init", str(seg / "best.pt"), *small
    )
    assert r.returncode == 0, r.stderr
    assert "initialised from" in r.stdout and "garment_head.weight" in r.stdout
    # a new phase from the cutout checkpoint keeps all of it, head included
    r = run(
        "training.train_cutout",
        "--out",
        str(tmp_path / "cut2"),
        "--arch",
        "deeplabv3plus",
        "--init",
        str(cut / "best.pt"),
        "--augment",
        "light",
        *small,
    )
    assert r.returncode == 0, r.stderr
    assert "(new: nothing)" in r.stdout
    exported = run("export.export_cutout", "--checkpoint", str(cut / "best.pt"), "--repository", str(repo))
    assert exported.returncode == 0, exported.stderr  # the recorded architecture is rebuilt; parity checked
    assert (repo / "cutout/1/model.onnx").exists() and "parity" in exported.stdout


def test_pseudo_labels_are_written_resumed_and_trained_on(data_dir, tmp_path):
    import numpy as np
    from PIL import Image

    labels = tmp_path / "pseudo"
    teacher = [
        "training.pseudo_label",
        "--model",
        "model_repository/segmentation/1/model.onnx",
        "--mirror",
        "--out",
        str(labels),
        "--limit",
        "3",
    ]
    r = run(*teacher)
    assert r.returncode == 0, r.stderr
    assert "labelled 3 photos" in r.stdout
    assert json.loads((labels / "teacher.json").read_text())["mirror"] is True
    for person in sorted(labels.glob("*_person.png")):
        name = person.name[: -len("_person.png")]
        photo = Image.open(data_dir / "ccp" / "photos" / f"{name}.jpg")
        assert not (data_dir / "ccp" / "labels" / f"{name}.png").exists()  # only photos without labels
        p, f = np.asarray(Image.open(person)), np.asarray(Image.open(labels / f"{name}_clothes.png"))
        assert p.shape == f.shape == photo.size[::-1]
        assert set(np.unique(p)) <= {0, 1} and f.max() <= 6 and 0.05 < p.mean() < 0.9  # a person was found
        assert ((f > 0) <= (p > 0)).mean() > 0.95  # the two tasks agree: garments lie on the person
    stamp = (labels / "teacher.json").stat().st_mtime_ns
    again = run(*teacher)
    assert "labelled 0 photos" in again.stdout  # resumed: nothing to redo
    assert (labels / "teacher.json").stat().st_mtime_ns == stamp  # so the training cache stays valid
    r = run(
        "training.train_segmentation",
        "--out",
        str(tmp_path / "run"),
        "--pseudo",
        str(labels),
        "--limit",
        "3",
        "--batch",
        "2",
        "--crop",
        "96",
        "128",
        "--steps",
        "2",
        "--val-every",
        "2",
    )
    assert r.returncode == 0, r.stderr
    assert "pseudo-labelled images 3" in r.stdout


def test_garment_pseudo_labels_train_the_cutout_network(data_dir, tmp_path):
    import numpy as np
    from PIL import Image

    labels = tmp_path / "pseudo"
    r = run(
        "training.pseudo_label",
        "--task",
        "cutout",
        "--model",
        "model_repository/cutout/1/model.onnx",
        "--out",
        str(labels),
        "--limit",
        "2",
    )
    assert r.returncode == 0, r.stderr
    garments = sorted(labels.glob("*_garment.png"))
    assert len(garments) == 2 and not list(labels.glob("*_person.png"))
    for g in garments:
        groups = np.asarray(Image.open(g))
        assert groups.max() <= 4 and 0.02 < (groups > 0).mean() < 0.8  # some garment, not the whole photo
    r = run(
        "training.train_cutout",
        "--out",
        str(tmp_path / "run"),
        "--pseudo",
        str(labels),
        "--limit",
        "2",
        *TINY_RUN,
    )
    assert r.returncode == 0, r.stderr
    assert "pseudo-labelled images 2" in r.stdout
