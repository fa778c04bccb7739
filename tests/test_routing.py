"""Issue 20's routing in the pipelines: the crop specialists answer photos that cut the person, and
the pose network says where a small person is. Pure decisions on made-up maps first, then the
pipelines with recording networks, then the served networks on real validation photos."""

import asyncio

import numpy as np
import pytest

from fashionpixel import keypoints, segmentation
from fashionpixel.letterbox import Box, Region
from fashionpixel.stages import inline, untimed

BOX = Box(0, 0, 40, 60)  # the whole 40×60 canvas is photo
EVERYTHING = tuple(range(18))  # every keypoint found
WAIST_UP = tuple(i for i in EVERYTHING if i not in (9, 10, 12, 13))  # no knees, no ankles


def person_probs(rows: slice, cols: slice) -> np.ndarray:
    """2×60×40 person probabilities: a person on `rows` × `cols`."""
    p = np.zeros((2, 60, 40), np.float32)
    p[1, rows, cols] = 1
    p[0] = 1 - p[1]
    return p


def test_a_foreground_at_the_top_or_bottom_edge_touches_it():
    assert segmentation.touches_edge(person_probs(slice(5, 60), slice(10, 30)), BOX)  # cut at the hips
    assert segmentation.touches_edge(person_probs(slice(0, 50), slice(10, 30)), BOX)  # cut at the chin
    assert not segmentation.touches_edge(person_probs(slice(5, 55), slice(10, 30)), BOX)  # a full figure
    assert not segmentation.touches_edge(person_probs(slice(0, 0), slice(0, 0)), BOX)  # nobody
    # the photo's edge is the letterbox box's, not the canvas's: below the photo is padding
    canvas = np.concatenate([person_probs(slice(5, 60), slice(10, 30)), person_probs(slice(0, 0), slice(0, 0))], 1)
    assert segmentation.touches_edge(canvas, BOX)  # the photo is the top half: it touches its bottom
    assert not segmentation.touches_edge(canvas, Box(0, 0, 40, 120))  # a photo as tall as the canvas: not
    # a waist-up crop whose lower body the first pass half-misses (person 0.3 there) still reaches the edge
    half_missed = person_probs(slice(5, 40), slice(10, 30))
    half_missed[1, 40:60, 10:30], half_missed[0, 40:60, 10:30] = 0.3, 0.7
    assert (half_missed[1, 40:] < 0.5).all()  # its argmax stops 20 rows above the edge
    assert segmentation.touches_edge(half_missed, BOX)
    half_missed[1, 40:60, 10:30], half_missed[0, 40:60, 10:30] = 0.1, 0.9  # a sure background stays one
    assert not segmentation.touches_edge(half_missed, BOX)


def test_foreground_share():
    assert segmentation.foreground_share(person_probs(slice(0, 30), slice(0, 40)), BOX) == pytest.approx(0.5)


def pose(found: tuple[int, ...]) -> np.ndarray:
    k = np.zeros((18, 3), np.float32)
    k[list(found), :2] = 10
    k[list(found), 2] = 0.9
    return k


def test_keypoints_cut_by_frame():
    assert not keypoints.cut_by_frame(pose(EVERYTHING))
    assert keypoints.cut_by_frame(pose(WAIST_UP))
    no_head = tuple(i for i in EVERYTHING if i not in keypoints.FACE)
    assert keypoints.cut_by_frame(pose(no_head))
    assert not keypoints.cut_by_frame(pose(()))  # nobody: nothing to route
    # a faint ankle at the bottom edge of a waist-up crop, as if the legs went on, does not count as seen
    faint = pose(EVERYTHING)
    faint[list(keypoints.ANKLES), 2] = 0.4
    assert keypoints.cut_by_frame(faint)
    faint[keypoints.ANKLES[0], 2] = keypoints.ANKLE_SEEN
    assert not keypoints.cut_by_frame(faint)


class Recorder:
    """A network that answers `answer` and counts its calls."""

    def __init__(self, answer):
        self.answer, self.calls = answer, 0

    async def __call__(self, canvas):
        self.calls += 1
        return self.answer


def run_segment(image, general, crops, pose, **options):
    """segmentation.segment without the post-processing; `options`: its other keywords."""
    return asyncio.run(
        segmentation.segment(
            image,
            crf=False,
            min_region=0,
            superpixels=False,
            infer=general,
            cpu=inline,
            stage=untimed,
            infer_crops=crops,
            pose=pose,
            **options,
        )
    )


def canvas_probs(rows: slice, cols: slice) -> np.ndarray:
    w, h = segmentation.CANVAS_W, segmentation.CANVAS_H
    p = np.zeros((2, h, w), np.float16)
    p[1, rows, cols] = 1
    p[0] = 1 - p[1]
    return p


def heatmaps_of(found: tuple[int, ...]) -> np.ndarray:
    """The pose network's 18×64×48 heatmaps with a sure peak for each keypoint in `found`."""
    h = np.zeros((18, 64, 48), np.float16)
    for i in found:
        h[i, 10 + 2 * i, 24] = 0.9
    return h


def test_segment_asks_the_specialist_for_a_cut_or_small_person_and_the_pose_network_only_when_it_helps():
    image = np.full((384, 256, 3), 128, np.uint8)
    looks_around = 1 + len(keypoints.windows(256, 384))  # the whole photo and each window
    cases = {  # first pass, what the pose network sees → (specialist calls, pose network calls)
        "full figure": (canvas_probs(slice(20, 360), slice(60, 200)), EVERYTHING, 0, 0),
        "cut at the hips": (canvas_probs(slice(20, 384), slice(60, 200)), WAIST_UP, 1, 1),
        "feet on the edge": (canvas_probs(slice(20, 384), slice(60, 200)), EVERYTHING, 0, 1),
        # the focus crop: the specialist's second opinion on the person mask
        "small or nobody": (canvas_probs(slice(200, 220), slice(100, 110)), (), 1, looks_around),
    }
    for name, (first, seen, crops_calls, pose_calls) in cases.items():
        general, crops, pose = (
            Recorder(first),
            Recorder(canvas_probs(slice(0, 384), slice(0, 256))),
            Recorder(heatmaps_of(seen)),
        )
        labels = run_segment(image, general, crops, pose)
        assert (crops.calls, pose.calls) == (crops_calls, pose_calls), name
        if name == "cut at the hips":
            assert labels.all(), "the specialist leads the result"
    # a figure the first pass hardly sees is not sent to the specialist, even when its unsure
    # foreground reaches an edge (a small person on a busy canvas): the pose network is not even asked
    faint = canvas_probs(slice(0, 384), slice(120, 124)).astype(np.float32)
    faint[1, :, 60:200] = np.maximum(faint[1, :, 60:200], 0.3)
    faint[0] = 1 - faint[1]
    assert segmentation.touches_edge(faint, Box(0, 0, 256, 384))
    assert segmentation.foreground_share(faint, Box(0, 0, 256, 384)) < keypoints.SMALL_SHARE
    general, crops, pose = Recorder(faint), Recorder(faint), Recorder(heatmaps_of(WAIST_UP))
    run_segment(image, general, crops, pose)
    assert crops.calls == 0
    # without the pose network or a specialist the pipeline is what it was
    assert run_segment(image, Recorder(cases["cut at the hips"][0]), None, None).shape == (384, 256)


def test_the_routing_head_decides_alone_where_it_is_sure_and_the_pose_network_between():
    """`first` answers the first pass with the general network's routing head: at most SURE_WHOLE or at
    least SURE_CUT it decides without the pose network, between them the pose network decides as before;
    a photo that does not pass the gates is not routed whatever the head says."""
    image = np.full((384, 256, 3), 128, np.uint8)
    crop, full = canvas_probs(slice(20, 384), slice(60, 200)), canvas_probs(slice(20, 360), slice(60, 200))
    cases = {  # first pass, head, what the pose network sees → (specialist calls, pose network calls)
        "sure it is cut": (crop, 0.99, EVERYTHING, 1, 0),
        "sure it is whole": (crop, 0.01, WAIST_UP, 0, 0),
        "unsure, the pose network says cut": (crop, 0.5, WAIST_UP, 1, 1),
        "unsure, the pose network says whole": (crop, 0.5, EVERYTHING, 0, 1),
        "off the edges": (full, 0.99, WAIST_UP, 0, 0),
    }
    for name, (probs, head, seen, crops_calls, pose_calls) in cases.items():
        first = Recorder((probs, np.array([head], np.float32)))
        general, crops = Recorder(probs), Recorder(canvas_probs(slice(0, 384), slice(0, 256)))
        pose = Recorder(heatmaps_of(seen))
        run_segment(image, general, crops, pose, first=first)
        assert (first.calls, general.calls, crops.calls, pose.calls) == (1, 0, crops_calls, pose_calls), name


def test_a_routed_person_mask_mixes_in_the_first_pass_and_the_parsing_does_not():
    """Routed to the specialist, the person mask is mostly the specialist's: what it is sure of stays
    person even where the first pass saw nothing, an unsure pixel of it goes where the first pass says,
    and the 7-class parsing is the specialist's alone (segmentation.SECOND_OPINION)."""
    image = np.full((384, 256, 3), 128, np.uint8)
    first = canvas_probs(slice(20, 384), slice(60, 200))  # cut at the hips
    special = canvas_probs(slice(20, 384), slice(40, 220)).astype(np.float32)  # sure on 40-60 and 200-220
    special[1, 20:384, 0:40], special[0, 20:384, 0:40] = 0.6, 0.4  # unsure spill on a door at the left
    labels = run_segment(image, Recorder(first), Recorder(special), Recorder(heatmaps_of(WAIST_UP)))
    assert labels[200, 40:220].all(), "what the specialist is sure of is person"
    assert not labels[200, 0:40].any(), "its unsure spill goes where the first pass says: background"
    mixed = segmentation.second_opinion(special, first)
    assert mixed[1, 200, 50] == pytest.approx(1 - segmentation.SECOND_OPINION)
    assert np.allclose(mixed.sum(0), 1)  # still probabilities: the quality features read them as such
    fashion = np.zeros((7, 4, 4), np.float32)
    assert segmentation.second_opinion(fashion, np.ones_like(fashion)) is fashion


def test_the_pose_look_asked_ahead_changes_nothing_but_when_it_is_asked():
    """pose_ahead (a lone request): the pose network is asked before the first pass answers, once, and
    the labels are the same; a request that then fails still waits for the look it started."""
    image = np.full((384, 256, 3), 128, np.uint8)
    cut, full = canvas_probs(slice(20, 384), slice(60, 200)), canvas_probs(slice(20, 360), slice(60, 200))

    class Network(Recorder):  # also notes how many pose calls had begun when it was asked
        def __init__(self, answer, pose=None):
            super().__init__(answer)
            self.pose, self.pose_calls_seen = pose, []

        async def __call__(self, canvas):
            await asyncio.sleep(0)  # a real call yields to the event loop
            self.pose_calls_seen.append(self.pose.calls if self.pose else None)
            return await super().__call__(canvas)

    for first, pose_calls in ((cut, 1), (full, 0)):  # a crop needs the look, a full figure does not
        results = {}
        for ahead in (False, True):
            pose = Recorder(heatmaps_of(WAIST_UP))
            general = Network(first, pose)
            crops = Recorder(canvas_probs(slice(0, 384), slice(0, 256)))
            results[ahead] = run_segment(image, general, crops, pose, pose_ahead=ahead)
            assert pose.calls == (1 if ahead else pose_calls)
            assert general.pose_calls_seen[0] == (1 if ahead else 0), "asked beside the first pass"
        assert np.array_equal(results[False], results[True])

    class Failing(Recorder):
        async def __call__(self, canvas):
            raise RuntimeError("Triton went away")

    pose = Network(heatmaps_of(WAIST_UP))  # slower than the failing network: it yields first
    with pytest.raises(RuntimeError):
        run_segment(image, Failing(cut), None, pose, pose_ahead=True)
    assert pose.calls == 1, "the look asked ahead ran to its end"


def test_the_pose_service_routes_a_faint_ankle_unless_the_person_is_small():
    """A large person with faint ankles (a waist-up crop) goes to the pose specialist; a small person,
    whose peaks are all faint-ish and who gets a focus pass instead, does not (docs/models/pose.md)."""
    image = np.full((384, 256, 3), 128, np.uint8)

    def first_look(rows: slice) -> np.ndarray:  # 18 peaks down `rows` of the heatmap, the ankles at 0.4
        h = np.zeros((18, 64, 48), np.float16)
        for i, y in enumerate(np.linspace(rows.start, rows.stop - 1, 18).astype(int)):
            h[i, y, 24] = 0.4 if i in keypoints.ANKLES else 0.9
        return h

    for rows, routed in ((slice(2, 62), 1), (slice(28, 36), 0)):
        general, crops = Recorder(first_look(rows)), Recorder(first_look(rows))
        asyncio.run(keypoints.estimate(image, infer=general, cpu=inline, stage=untimed, infer_crops=crops))
        assert crops.calls == routed, rows


@pytest.mark.slow
@pytest.mark.data
def test_served_routing_on_real_framings(data_dir):
    """The served networks in-process on real validation photos: waist-up crops go to the specialist,
    full photos stay with the general network, and the pose network finds small people the parser's
    first pass misses (all 97 photos: docs/models/segmentation.md, "Crop specialist"). The general
    network's routing head decides most crops alone, as the pose network would have
    (all the validation photos: docs/models/segmentation_routing.md)."""
    from pathlib import Path

    from export.onnxruntime_session import onnx_session
    from fashionpixel.models import POSE, SEGMENTATION
    from fashionpixel.networks import infer_with
    from training.datasets import fashionista_samples, label_maps
    from training.fit_routing import overruled
    from training.framing import framed_photos
    from training.served import onnx_network, predict

    repo = Path(__file__).resolve().parents[1] / "model_repository"
    sessions = [onnx_session(SEGMENTATION.onnx_path(repo), 2)]
    pose = infer_with(onnx_network({POSE: POSE.onnx_path(repo)}, 2), POSE)
    samples = [s for s in fashionista_samples() if s.split == "val"][:20]
    routed, found, decided, otherwise = {}, 0, {}, 0
    for framing in ("full", "waist-up", "knee-up", "small"):
        n = decided[framing] = 0
        for _, image, labels, _ in framed_photos(framing, samples, label_maps):
            canvas, box = segmentation.prepare(image)
            answer = predict(sessions, canvas)
            probs, head = answer["person"], float(answer["cut"][0])
            cut = asyncio.run(segmentation.cut_by_frame(image, probs, box, pose=pose, cpu=inline, stage=untimed))
            n += cut
            if segmentation.may_be_cut(probs, box) and segmentation.head_is_sure(head):
                decided[framing] += 1
                otherwise += overruled(head, cut)
            if framing == "small" and segmentation.foreground_share(probs, box) < keypoints.SMALL_SHARE:
                region = asyncio.run(keypoints.locate_person(image, infer=pose, cpu=inline, stage=untimed))
                ys, xs = np.nonzero(labels["person"])
                found += (
                    region is not None and region.x0 <= xs.mean() < region.x1 and region.y0 <= ys.mean() < region.y1
                )
        routed[framing] = n / len(samples)
    print("share routed to the crop specialist", routed, "small people located", found)
    print("decided by the routing head alone", decided, "otherwise than the pose network", otherwise)
    assert routed["waist-up"] >= 0.85 and routed["full"] <= 0.1
    assert found >= 10
    assert decided["waist-up"] >= 15 and decided["knee-up"] >= 12 and otherwise <= 1


def test_the_focus_pass_asks_the_specialist_to_lead_the_parsing_and_to_second_the_person_mask():
    # a padded square photo: on the canvas it is a 256×256 box, the figure a small part of it
    image = np.full((600, 600, 3), 128, np.uint8)
    w, h = segmentation.CANVAS_W, segmentation.CANVAS_H
    for classes, expected in ((2, (2, 1)), (7, (1, 1))):  # (general calls, specialist calls)
        first = np.zeros((classes, h, w), np.float16)
        first[0] = 1
        first[0, 120:260, 100:150], first[classes - 1, 120:260, 100:150] = 0, 1
        general, crops = Recorder(first), Recorder(first)
        run_segment(image, general, crops, None)  # no pose network: no routing, the focus pass from the mask
        assert (general.calls, crops.calls) == expected, f"{classes} classes"
        general = Recorder(first)
        run_segment(image, general, None, None)  # no specialist served: the general network alone
        assert general.calls == 2, f"{classes} classes"
    assert not segmentation.focus_by_specialist(first, None)


def test_the_quality_features_read_the_leading_networks_own_probabilities():
    """A routed photo's labels come from the mix, its quality features from the specialist's own answer
    (docs/models/quality.md: the mix is less sure wherever the general network disagrees)."""
    from fashionpixel import quality

    image = np.full((384, 256, 3), 128, np.uint8)
    first = canvas_probs(slice(20, 384), slice(60, 200))
    special = canvas_probs(slice(20, 384), slice(40, 220))
    assess = quality.Assessment()
    labels = run_segment(image, Recorder(first), Recorder(special), Recorder(heatmaps_of(WAIST_UP)), assess=assess)
    box = segmentation.prepare(image)[1]
    task, features = assess.parts["person"]
    assert task == "person"
    assert features == segmentation.quality_features(special, box, labels)[1]
    assert features != segmentation.quality_features(segmentation.second_opinion(special, first), box, labels)[1]


def test_a_small_persons_focus_crop_is_the_general_networks_with_the_specialists_second_opinion():
    crop = np.zeros((3, 8, 8), np.uint8)
    general = np.zeros((2, 8, 8), np.float32)
    general[1, :, :4], general[1, :, 4:] = 0.6, 0.0  # unsure on the left half, sure background on the right
    general[0] = 1 - general[1]
    special = np.zeros_like(general)
    special[1] = 1.0  # the specialist calls the whole crop person, as it spills onto a small person's surroundings
    special[0] = 0.0
    look = segmentation.focus_look(crop, general, infer=Recorder(general), infer_crops=Recorder(special))
    mixed, lead = asyncio.run(look)
    assert lead is general  # what the quality features read: the leading network's own
    share = segmentation.SECOND_OPINION
    assert mixed[1, 0, 0] == pytest.approx((1 - share) * 0.6 + share)  # it firms up an unsure pixel
    assert (mixed[1, :, 4:] < 0.5).all()  # and does not overrule a sure one
    assert np.allclose(mixed.sum(0), 1)


def test_focus_crop_looks_again_where_the_network_would_see_the_person_larger():
    from fashionpixel.letterbox import focus_crop

    canvas = (256, 384)
    # a portrait photo whose person fills it: a crop would not be seen larger
    assert focus_crop(50, 20, 350, 580, canvas, 400, 600, 1.25) is None
    # the same person padded to a white square: letterboxed at 2/3 of the size, so a crop gains ~1.5x
    r = focus_crop(150, 20, 450, 580, canvas, 600, 600, 1.25)
    assert r is not None and r.y1 - r.y0 >= 560 and abs((r.x1 - r.x0) / (r.y1 - r.y0) - 2 / 3) < 0.01
    assert focus_crop(150, 20, 450, 580, canvas, 600, 600, 1.7) is None  # the gain is 1.6
    # a small person: a crop inside the photo, at the canvas's aspect
    r = focus_crop(500, 300, 560, 480, canvas, 800, 600, 1.25)
    assert r is not None and 0 <= r.x0 < 500 and r.x1 > 560 and 0 <= r.y0 <= 300 and r.y1 >= 480


def test_windows_tile_the_photo_with_overlap():
    for w, h in ((800, 600), (400, 600), (1200, 400)):
        ws = keypoints.windows(w, h)
        covered = np.zeros((h, w), bool)
        for r in ws:
            assert 0 <= r.x0 < r.x1 <= w and 0 <= r.y0 < r.y1 <= h
            assert r.y1 - r.y0 == round(h * keypoints.LOCATE_WINDOW)
            covered[r.y0 : r.y1, r.x0 : r.x1] = True
        assert covered.all() and len(ws) >= 4


def test_locate_person_keeps_the_surest_look():
    """A made-up pose network that sees a person only in the window at the photo's lower right."""
    image = np.zeros((600, 800, 3), np.uint8)
    image[400:, 600:] = 255  # what "the person" looks like to this network

    async def network(canvas):  # peaks on the bright pixels, as sure as the canvas is bright
        bright = canvas[..., 0] == 255
        heatmaps = np.zeros((18, 64, 48), np.float16)
        if bright.any():
            ys, xs = np.nonzero(bright[::4, ::4])
            for i in range(18):
                heatmaps[i, ys[i * len(ys) // 18], xs[i * len(xs) // 18]] = bright.mean()
        return heatmaps

    region = asyncio.run(keypoints.locate_person(image, infer=network, cpu=inline, stage=untimed))
    assert region is not None and region.x0 <= 700 < region.x1 and region.y0 <= 500 < region.y1


def test_locate_person_passes_over_a_tiny_sure_skeleton(monkeypatch):
    """A texture (railings in a window of a validation photo in the small framing) can draw a sure
    skeleton 20 px high: it used to win and the small person was lost. A whole-photo look without a
    crop still wins when it is surest: the person is large, and a window would cut them."""
    w, h = 800, 600
    person = (650, 400, 710, 580)  # x0, y0, x1, y1 of the small person, 30 % of the photo high

    def holds_person(r) -> bool:
        return r.x0 <= person[0] and person[2] <= r.x1 and r.y0 <= person[1] and person[3] <= r.y1

    def skeleton(x0, y0, x1, y1, score):
        k = np.zeros((18, 3), np.float32)
        k[:, 0], k[:, 1], k[:, 2] = np.linspace(x0, x1, 18), np.linspace(y0, y1, 18), score
        return k

    def looks(whole_score):
        async def look(image, region=None, **_):
            if region is None:  # the whole photo: spread over all of it, so no crop
                return skeleton(0, 0, w - 1, h - 1, whole_score)
            if holds_person(region):
                return skeleton(*person, 0.85)
            if region.x0 == 0 and region.y0 == 0:  # railings in the top-left window: a sure, tiny skeleton
                return skeleton(100, 100, 110, 120, 0.95)
            return skeleton(region.x0, region.y0, region.x1, region.y1, 0.05)  # nobody: weak, strewn

        return look

    image = np.zeros((h, w, 3), np.uint8)
    monkeypatch.setattr(keypoints, "look", looks(0.3))
    region = asyncio.run(keypoints.locate_person(image, infer=None, cpu=inline, stage=untimed))
    assert region is not None and holds_person(region)
    assert region.y1 - region.y0 < 0.6 * h  # a crop around the person, not the whole photo
    monkeypatch.setattr(keypoints, "look", looks(0.97))
    assert asyncio.run(keypoints.locate_person(image, infer=None, cpu=inline, stage=untimed)) is None


def test_a_small_persons_focus_crop_alone_holds_the_person():
    """What the first pass called foreground outside a small person's focus crop is the background it
    took for them (validation photos in the small framing: 24 591 such pixels, 16 of them the person)."""
    crop_probs = person_probs(slice(0, 60), slice(0, 40))  # the crop: all person
    focus = (Region(20, 30, 40, 60), crop_probs, BOX)
    blob = person_probs(slice(5, 10), slice(2, 6))  # 20 of 2 400 pixels: a small person's first pass
    out = segmentation.photo_probs(blob, BOX, (40, 60), (40, 60), focus)
    assert (out[1, 5:10, 2:6] == 0).all() and (out[0, 5:10, 2:6] == 1).all()
    assert (out[1, 30:60, 20:40] > 0.99).all()  # the crop's person, pasted in
    large = person_probs(slice(5, 30), slice(2, 20))  # 19 % of the photo: a person the first pass saw
    out = segmentation.photo_probs(large, BOX, (40, 60), (40, 60), focus)
    assert (out[1, 5:30, 2:20] == 1).all()


def test_a_small_outfits_focus_crop_alone_holds_the_matte():
    from fashionpixel.cutout import merge_focus

    first = np.zeros((60, 80), np.float32)
    first[5:10, 2:6] = 0.9  # the first pass's guess on a busy background
    focus = np.full((30, 20), 0.8, np.float32)
    alone = merge_focus(first, focus, Region(60, 30, 80, 60), alone=True)
    assert alone[5:10, 2:6].max() == 0 and (alone[30:60, 60:80] == 0.8).all()
    kept = merge_focus(first, focus, Region(60, 30, 80, 60))  # a garment seen small on a person who is not
    assert (kept[5:10, 2:6] == 0.9).all() and (kept[30:60, 60:80] == 0.8).all()


def test_a_window_the_segmentation_network_confirms_wins_over_a_large_whole_photo_look(monkeypatch):
    """The pose network's whole-photo look says "a large person" (no crop), but the first pass sees almost
    no one (validation photos 0067 and 0466 of the small framing). Then the surest window's small person
    is taken if the segmentation network, looking at that crop, finds someone there whom the crop does not
    cut through (feet or a shadow at its edge are fine; a body as wide as itself is a large person's
    window); a crop where it finds no one is not, and without the network's word the whole-photo look
    stands."""
    w, h = 800, 600
    person = (650, 400, 710, 580)

    def skeleton(x0, y0, x1, y1, score):
        k = np.zeros((18, 3), np.float32)
        k[:, 0], k[:, 1], k[:, 2] = np.linspace(x0, x1, 18), np.linspace(y0, y1, 18), score
        return k

    async def look(image, region=None, **_):
        if region is None:
            return skeleton(0, 0, w - 1, h - 1, 0.97)
        if region.x0 <= person[0] and person[2] <= region.x1 and region.y0 <= person[1] and person[3] <= region.y1:
            return skeleton(*person, 0.85)
        return skeleton(region.x0, region.y0, region.x1, region.y1, 0.05)

    monkeypatch.setattr(keypoints, "look", look)
    image = np.zeros((h, w, 3), np.uint8)
    canvas, box = segmentation.prepare(image)
    nobody = np.zeros((2, *canvas.shape[:2]), np.float32)
    nobody[0] = 1
    looked = []

    def network(rows: slice, feet: slice = slice(0, 0)):  # the segmentation network on the crop: a person
        # 60 px wide on `rows` of its canvas, and 10 px wide (feet, a shadow) on `feet`
        async def infer(crop_canvas):
            looked.append(crop_canvas.shape)
            p = np.zeros((2, *crop_canvas.shape[:2]), np.float32)
            p[1, rows, 100:160] = 1
            p[1, feet, 125:135] = 1
            p[0] = 1 - p[1]
            return p

        return infer

    def target(infer):
        return asyncio.run(
            segmentation.focus_target(image, nobody, box, pose=object(), cpu=inline, stage=untimed, infer=infer)
        )

    region = target(network(slice(60, 330)))  # a whole small person inside the crop
    assert region is not None and region.x0 <= person[0] and person[2] <= region.x1 and len(looked) == 1
    assert target(network(slice(60, 300), feet=slice(300, 384))) is not None  # feet at the crop's edge
    assert target(network(slice(60, 384))) is None  # cut through at the crop's bottom edge
    assert target(network(slice(300, 330))) is None  # a sliver, under SMALL_SHARE of the crop
    assert target(network(slice(0, 0))) is None  # nobody there
    assert target(None) is None  # without the network's word the whole-photo look stands, as before
