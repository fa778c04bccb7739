"""Readers for ../shared/data (Fashionista, CCP, keypoints) and the fixed train/validation split.

The data is never copied into the repository: it is read from DATA_DIR (default ../shared/data) and
pre-resized once into a cache under .cache/ (gitignored) so that training does not decode JPEGs.
"""

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from fashionpixel.labels import CCP_GARMENT_GROUPS, CCP_TO_FASHION, FASHION_CLASSES, GARMENT_CLASSES, ccp_lookup
from fashionpixel.letterbox import letterbox, letterbox_labels, points_to_canvas

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("DATA_DIR", REPO.parent / "shared" / "data"))
CACHE_DIR = Path(os.environ.get("FASHIONPIXEL_CACHE", REPO / ".cache"))
VAL_PERCENT = 15


def is_validation(dataset: str, name: str) -> bool:
    """A fixed split by hash of the file name: stable across runs and machines, ~15% validation."""
    digest = hashlib.md5(f"{dataset}/{name}".encode()).hexdigest()
    return int(digest, 16) % 100 < VAL_PERCENT


@dataclass(frozen=True)
class Sample:
    dataset: str  # "fashionista" | "ccp"
    name: str  # stem, e.g. "0001"
    image: Path
    pseudo: Path | None = None  # a folder of teacher labels (training.pseudo_label) instead of the set's own

    @property
    def split(self) -> str:
        return "val" if is_validation(self.dataset, self.name) else "train"


def fashionista_samples() -> list[Sample]:
    root = DATA_DIR / "fashionista"
    return [Sample("fashionista", p.stem, p) for p in sorted((root / "images").glob("*.jpg"))]


def ccp_samples() -> list[Sample]:
    """The annotated CCP photos (those with a label file)."""
    root = DATA_DIR / "ccp"
    return [Sample("ccp", p.stem, root / "photos" / f"{p.stem}.jpg") for p in sorted((root / "labels").glob("*.png"))]


def ccp_unlabelled_samples() -> list[Sample]:
    """The CCP photos without pixel labels (1005–2098): material for pseudo-labels."""
    root = DATA_DIR / "ccp"
    labelled = {p.stem for p in (root / "labels").glob("*.png")}
    return [Sample("ccp", p.stem, p) for p in sorted((root / "photos").glob("*.jpg")) if p.stem not in labelled]


# Pseudo-label files per kind: network output → `<name>_<suffix>.png`, in the order a teacher writes
# them (the last marks a photo done). "seg" uses Fashionista's names, so read_labels reads both.
# "person": MediaPipe's soft person probability (0-255), the teacher of issue 20.
PSEUDO_FILES = {
    "seg": {"fashion": "clothes", "person": "person"},
    "garment": {"garment": "garment"},
    "person": {"teacher": "teacher"},
}


def pseudo_done_suffix(kind: str) -> str:
    """The suffix of the file a teacher writes last for a photo: its presence marks the photo done."""
    return list(PSEUDO_FILES[kind].values())[-1]


def pseudo_samples(folder: Path, kind: str = "seg") -> list[Sample]:
    """The photos a pseudo-label folder holds `kind` labels for (all for training, never validation)."""
    if not (Path(folder) / "teacher.json").exists():
        raise ValueError(
            f"{folder} has no teacher.json: its labelling did not finish (run training.pseudo_label again)"
        )
    suffix = f"_{pseudo_done_suffix(kind)}.png"
    names = sorted(p.name[: -len(suffix)] for p in Path(folder).glob(f"*{suffix}"))
    return [Sample("ccp", n, DATA_DIR / "ccp" / "photos" / f"{n}.jpg", pseudo=Path(folder)) for n in names]


def ccp_label_names() -> list[str]:
    """CCP label names by index, from lines like "41: skin"."""
    lines = (DATA_DIR / "ccp" / "label_list.txt").read_text().splitlines()
    return [line.split(":", 1)[1].strip() for line in lines if line.strip()]


def read_image(sample: Sample) -> np.ndarray:
    return np.asarray(Image.open(sample.image).convert("RGB"))


def read_labels(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """(person, fashion) label maps at the photo's full size: person 0/1, fashion 0..6."""
    if sample.dataset == "fashionista" or sample.pseudo:  # pseudo-labels are written in Fashionista's format
        root = sample.pseudo or DATA_DIR / "fashionista" / "labels"
        person = np.asarray(Image.open(root / f"{sample.name}_person.png"))
        fashion = np.asarray(Image.open(root / f"{sample.name}_clothes.png"))
        return (person > 0).astype(np.uint8), fashion.astype(np.uint8)
    raw = np.asarray(Image.open(DATA_DIR / "ccp" / "labels" / f"{sample.name}.png"))
    lut = ccp_lookup(ccp_label_names(), CCP_TO_FASHION, FASHION_CLASSES)
    return (raw > 0).astype(np.uint8), lut[raw]


def label_maps(sample: Sample) -> dict[str, np.ndarray]:
    """A photo's labelled person (0/1) and fashion maps by name (training.framing.framed_photos' `read`)."""
    return dict(zip(("person", "fashion"), read_labels(sample)))


def read_garments(sample: Sample) -> np.ndarray:
    """CCP garment-group map at the photo's full size: 0 none, 1 top, 2 bottom, 3 dress, 4 shoes."""
    if sample.dataset != "ccp":
        raise ValueError("garment groups exist only for CCP (Fashionista labels outer layers as background)")
    if sample.pseudo:
        return np.asarray(Image.open(sample.pseudo / f"{sample.name}_garment.png"))
    raw = np.asarray(Image.open(DATA_DIR / "ccp" / "labels" / f"{sample.name}.png"))
    return ccp_lookup(ccp_label_names(), CCP_GARMENT_GROUPS, GARMENT_CLASSES)[raw]


def _segmentation_labels(sample: Sample) -> dict[str, np.ndarray]:
    person, fashion = read_labels(sample)
    return {"person": person, "fashion": fashion}


def _garment_labels(sample: Sample) -> dict[str, np.ndarray]:
    garments = read_garments(sample)
    if sample.pseudo:  # a garment teacher writes no person mask: the garments stand in for it
        return {"garment": garments, "person": (garments > 0).astype(np.uint8)}
    return {"garment": garments, "person": read_labels(sample)[0]}


def _teacher_labels(sample: Sample) -> dict[str, np.ndarray]:
    """A soft person probability (0-255) from a teacher, and its 0/1 mask for the framings' anchors."""
    soft = np.asarray(Image.open(sample.pseudo / f"{sample.name}_teacher.png"))
    return {"teacher": soft, "person": (soft >= 128).astype(np.uint8)}


LABELS = {"seg": _segmentation_labels, "garment": _garment_labels, "person": _teacher_labels}


def cached(prefix: str, samples: list[Sample], make: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """`make()`'s arrays for `samples`, saved once as .cache/<prefix>_<hash of the names>.npz, read back after."""
    names = "|".join(f"{s.dataset}/{s.name}" for s in samples)
    # pseudo-labels: the folder and when its teacher wrote it, so that relabelling is not read stale
    folders = sorted({s.pseudo for s in samples if s.pseudo})
    teachers = [f"{f}@{(f / 'teacher.json').stat().st_mtime_ns}" for f in folders]
    key = hashlib.md5("|".join([names, *teachers]).encode()).hexdigest()[:10]
    path = CACHE_DIR / f"{prefix}_{key}.npz"
    if path.exists():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    data = make()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.savez(path, **data)
    return data


def build_cache(samples: list[Sample], width: int, height: int, kind: str = "seg") -> dict[str, np.ndarray]:
    """Letterboxed images, label maps and teacher keypoints (N×18×2 canvas pixels, -1 = missing) of
    `samples`, cached per (kind, set, size, split).

    kind "seg": person + fashion maps; "garment": the cutout groups (CCP only) + the person mask;
    "person": a teacher's soft person probability + its mask (pseudo-labelled photos only)."""

    def make():
        columns: dict[str, list[np.ndarray]] = {"images": [], "keypoints": []}
        for s in samples:
            image = read_image(s)
            canvas, box = letterbox(image, width, height)
            columns["images"].append(canvas)
            columns["keypoints"].append(points_to_canvas(sample_keypoints(s), box, image.shape[1]))
            for name, labels in LABELS[kind](s).items():
                columns.setdefault(name, []).append(letterbox_labels(labels, width, height))
        return {k: np.stack(v) for k, v in columns.items()}

    return cached(f"{kind}_{width}x{height}_v2", samples, make)  # v2: with keypoints (and garment + person)


def with_pseudo(
    parts: list[dict[str, np.ndarray]],
    folder: Path | None,
    width: int,
    height: int,
    kind: str,
    limit: int | None = None,
) -> dict[str, np.ndarray]:
    """build_cache results as one training set, plus `folder`'s pseudo-labelled photos when given."""
    if folder:
        pseudo = build_cache(pseudo_samples(folder, kind)[:limit], width, height, kind)
        print(f"pseudo-labelled images {len(pseudo['images'])} from {folder}", flush=True)
        parts = [*parts, pseudo]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def parse_keypoint_csv(path: Path) -> dict[str, np.ndarray]:
    """The DeepFashion / pose-transfer annotation format: `name:[y0..y17]:[x0..x17]`, -1 = missing.

    Returns {name: 18×2 float32 (x, y)}, with -1 for missing keypoints."""
    out = {}
    for line in Path(path).read_text().splitlines()[1:]:
        if not line.strip():
            continue
        name, ys, xs = line.rsplit(":", 2)
        y = np.array(json.loads(ys), dtype=np.float32)
        x = np.array(json.loads(xs), dtype=np.float32)
        if len(x) != 18 or len(y) != 18:
            raise ValueError(f"{path}: {name} has {len(x)} x and {len(y)} y values, not 18")
        k = np.stack([x, y], axis=1)
        k[(x < 0) | (y < 0)] = -1
        out[name] = k
    return out


def parse_pairs_csv(path: Path) -> list[tuple[str, str]]:
    """DeepFashion pose-transfer pairs: a `from,to` header, then one pair of image names a line."""
    lines = Path(path).read_text().splitlines()
    return [tuple(line.split(",")[:2]) for line in lines[1:] if line.strip()]


@functools.lru_cache(maxsize=None)
def keypoint_table(dataset: str) -> dict[str, np.ndarray]:
    """The teacher keypoints of one set by photo stem (an empty table when the file is absent)."""
    path = DATA_DIR / "keypoints" / f"{dataset}.csv"
    return {Path(n).stem: k for n, k in parse_keypoint_csv(path).items()} if path.exists() else {}


def sample_keypoints(sample: Sample) -> np.ndarray:
    """A photo's 18×2 teacher keypoints in photo pixels (all -1 when it has none)."""
    k = keypoint_table(sample.dataset).get(sample.name)
    return k.copy() if k is not None else np.full((18, 2), -1, np.float32)


def keypoint_samples() -> list[tuple[Sample, np.ndarray]]:
    """Every photo of Fashionista and CCP with its teacher keypoints (18×2, -1 = not visible)."""
    out = []
    for dataset, folder in (("fashionista", "fashionista/images"), ("ccp", "ccp/photos")):
        table = parse_keypoint_csv(DATA_DIR / "keypoints" / f"{dataset}.csv")
        for name, k in sorted(table.items()):
            path = DATA_DIR / folder / name
            if path.exists():
                out.append((Sample(dataset, Path(name).stem, path), k))
    return out
