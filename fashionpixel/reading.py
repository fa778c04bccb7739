"""A photo's person read as /v1/segment and /v1/pose read it: the person mask, the parsing and the
keypoints that skin generation and pose transfer build on. The same pipelines answer (segmentation.segment
and keypoints.estimate): a waist-up product photo goes to the crop specialists, a small person gets the
focus pass, the person mask takes the second opinion, exactly as the segmentation and pose endpoints
would answer the same photo (issue 20: the editing services get the inputs the framings need).

Those pipelines start with the same looks at the photo (the segmentation network's first pass serves both
tasks, the pose network's look at the whole photo serves the routing, the small-person search and the
pose), so they run side by side over `OncePerInput`, which asks each network once per distinct input."""

import asyncio
import hashlib
from dataclasses import dataclass

import numpy as np

from fashionpixel import keypoints as keypoint_net
from fashionpixel import quality, segmentation
from fashionpixel.models import POSE, POSE_CROPS, SEGMENTATION, SEGMENTATION_CROPS, Model
from fashionpixel.networks import Network, infer_with
from fashionpixel.pose import skeleton_mask
from fashionpixel.refine import CrfParams
from fashionpixel.stages import Cpu, Stage

READING_MODELS = (SEGMENTATION, SEGMENTATION_CROPS, POSE, POSE_CROPS)


class OncePerInput:
    """One request's `Network` on which a model asked again for an input it has seen answers from the
    first call (all of the model's outputs are fetched, each caller reads the ones it named). The answers
    are shared: they are made read-only so that no caller can change another's."""

    def __init__(self, network: Network):
        self._network = network
        self._calls: dict[tuple, asyncio.Future] = {}

    async def run(
        self, model: Model, inputs: dict[str, np.ndarray], outputs: tuple[str, ...] = ()
    ) -> dict[str, np.ndarray]:
        key = (model.name, *((name, a.shape, a.dtype.str, _digest(a)) for name, a in sorted(inputs.items())))
        call = self._calls.get(key)
        if call is None:
            call = self._calls[key] = asyncio.ensure_future(self._answer(model, inputs))
        # shielded: a caller that goes away must not cancel the call the others wait for
        answer = await asyncio.shield(call)
        return {name: answer[name] for name in outputs or model.output_names}

    async def _answer(self, model: Model, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        answer = await self._network.run(model, inputs)
        for array in answer.values():
            array.flags.writeable = False
        return answer


def _digest(a: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(a), digest_size=16).digest()


@dataclass
class Reading:
    person: np.ndarray  # H×W bool
    fashion: np.ndarray | None  # H×W uint8 classes (fashionpixel.labels.FASHION_CLASSES), when asked
    keypoints: np.ndarray | None  # 18×3 (x, y, score) in photo pixels, -1 = not found; when asked


async def read_person(
    image: np.ndarray,
    *,
    network: Network,
    cpu: Cpu,
    stage: Stage,
    refine_person: bool,
    limbs_kept: float = 0.0,
    parsing: bool = True,
    pose: bool = True,
    assess: quality.Assessment | None = None,
) -> Reading:
    """The person mask, the parsing (`parsing`) and the keypoints (`pose`) of one photo, at once.
    `refine_person`: the person mask with /v1/segment's refinement (dense CRF, the outline snapped to a
    plain backdrop), for a mask that becomes an output's alpha; without it, the network's labels as
    they are, as is the parsing (a region to fill or warp, where the CRF's cost buys nothing measured).
    `limbs_kept` (with `refine_person` and `pose`): where the refinement took the network's own person
    off the limbs the keypoints draw (`limbs_kept` × torso length wide), it is kept: the CRF cuts
    thin, light legs and arms (white tights) that the network had.
    `assess` receives the quality features of each part read (person, fashion, pose)."""
    once = OncePerInput(network)
    look = infer_with(once, POSE)

    def segment(task: str, refine: bool, assess=assess):
        return segmentation.segment(
            image,
            # the CRF at the parsing's smoothness, which /v1/segment's person mask lightens (PERSON_CRF): pose
            # transfer's source outline was chosen with it (without the smoothness it lost a garment of 80 pairs)
            crf=CrfParams() if refine else False,
            min_region=0,
            superpixels=False,
            backdrop=refine,
            infer=infer_with(once, SEGMENTATION, task),
            first=infer_with(once, SEGMENTATION, task, "cut"),
            infer_crops=infer_with(once, SEGMENTATION_CROPS, task),
            pose=look,
            cpu=cpu,
            stage=stage,
            assess=assess,
        )

    jobs = {"person": segment("person", refine_person)}
    keep_limbs = refine_person and pose and limbs_kept > 0
    if keep_limbs:  # the same network answers as the refined mask's (OncePerInput): no second pass
        jobs["unrefined"] = segment("person", False, assess=None)
    if parsing:
        jobs["fashion"] = segment("fashion", False)
    if pose:
        jobs["keypoints"] = keypoint_net.estimate(
            image, infer=look, infer_crops=infer_with(once, POSE_CROPS), cpu=cpu, stage=stage, assess=assess
        )
    # every job runs to its end even when one fails: no work of this request outlives its answer
    results = dict(zip(jobs, await asyncio.gather(*jobs.values(), return_exceptions=True)))
    if error := next((r for r in results.values() if isinstance(r, BaseException)), None):
        raise error
    person = await cpu(np.greater, results["person"], 0)  # a whole-photo array: off the event loop
    if keep_limbs:
        person = await cpu(with_limbs_kept, person, results["unrefined"], results["keypoints"], limbs_kept)
    return Reading(person, results.get("fashion"), results.get("keypoints"))


def with_limbs_kept(refined: np.ndarray, unrefined: np.ndarray, keypoints: np.ndarray, width: float) -> np.ndarray:
    """The refined person mask, with the unrefined labels' person kept on the limbs (`width` × torso
    length wide) and the torso the keypoints draw; as it is without a torso."""
    limbs = skeleton_mask(keypoints, refined.shape, width)
    return refined if limbs is None else refined | (limbs & (unrefined > 0))
