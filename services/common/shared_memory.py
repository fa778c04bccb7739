"""Tensors to and from Triton through system shared memory, when Triton runs on the same host.

A gRPC request carries its tensors inside the message: for one segmentation call the service
serialises the photo and parses 1.8 MB of class probabilities, and Triton does the same on its side.
With system shared memory the service writes the inputs into a region Triton has mapped, Triton
writes the outputs into the same region, and the messages carry only names and offsets: 5 ms less
per call at one client and 7 ms less CPU (docs/tuning.md, issue 23).

A `Region` holds one call of one model: its inputs, then its outputs, at fixed offsets (every served
model has fixed tensor shapes). `Regions` lends them out, one per call in flight, and makes a new one
when all of a model's are busy; Triton registration is the caller's (services/common/triton.py).

The regions are files in /dev/shm, which is where Linux's shm_open, and so Triton, looks for "/name".
(tritonclient's own helper, `tritonclient.utils.shared_memory`, needs pkg_resources, which is not in
our environment, and copies where a NumPy view of the mapping does not; the stdlib's
`multiprocessing.shared_memory` starts a resource-tracker process per service.) Each region's file
stays open with a shared lock, so a region whose owner died, however it died, is one whose file can
be locked exclusively: `stale()` finds those for the caller to forget and delete.
"""

import fcntl
import mmap
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fashionpixel.models import DTYPES, Model
from services.common.metrics import SHARED_MEMORY_BYTES

SHM_DIR = Path("/dev/shm")
PREFIX = "fashionpixel-"
_ALIGN = 64


@dataclass(frozen=True)
class Slot:
    offset: int
    dtype: np.dtype
    shape: tuple[int, ...]  # with the batch axis (of one)
    nbytes: int = field(init=False)  # once: every call names it for each tensor

    def __post_init__(self):
        object.__setattr__(self, "nbytes", int(np.prod(self.shape)) * self.dtype.itemsize)


class Region:
    def __init__(self, path: Path, model: Model):
        self.name, self.model = path.name, model
        self.slots: dict[str, Slot] = {}
        size = 0
        for t in (*model.inputs, *model.outputs):
            self.slots[t.name] = slot = Slot(size, np.dtype(DTYPES[t.dtype]), (1, *t.dims))
            size += -(-slot.nbytes // _ALIGN) * _ALIGN
        self.size = size
        # made under a name `stale()` does not look at, and named once locked
        self.path = path.with_name("." + path.name)
        self.fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_SH)  # alive: `stale()` of another process leaves it alone
            os.ftruncate(self.fd, size)
            self.buffer = mmap.mmap(self.fd, size)
            SHARED_MEMORY_BYTES.inc(size)
            os.rename(self.path, path)
            self.path = path
        except BaseException:
            self.delete()
            raise

    @property
    def key(self) -> str:
        """What Triton opens with shm_open."""
        return "/" + self.name

    def view(self, tensor: str) -> np.ndarray:
        slot = self.slots[tensor]
        return np.ndarray(slot.shape, slot.dtype, self.buffer, slot.offset)

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)
        if getattr(self, "buffer", None) is not None:
            SHARED_MEMORY_BYTES.dec(self.size)
            try:
                self.buffer.close()
            except BufferError:  # a view of it is still referenced somewhere: unmapped when that goes
                pass
            self.buffer = None
        os.close(self.fd)


class Regions:
    """The regions of one process, lent out per call; `owner` names them (e.g. the service)."""

    def __init__(self, owner: str, directory: Path = SHM_DIR):
        self.directory = directory
        self.stem = f"{PREFIX}{owner}-{os.getpid()}-{secrets.token_hex(3)}-"
        self.free: dict[str, list[Region]] = {}
        self.made: list[Region] = []
        self.count = 0  # regions ever made: each name is new, also after some were given back

    def take(self, model: Model) -> Region:
        free = self.free.setdefault(model.name, [])
        if free:
            return free.pop()
        region = Region(self.directory / f"{self.stem}{model.name}-{self.count}", model)
        self.count += 1
        self.made.append(region)
        return region

    def give_back(self, region: Region) -> None:
        self.free[region.model.name].append(region)

    def remove_surplus(self) -> list[Region]:
        """Free regions beyond one per model, out of the pool (no call can take them any more): what an
        idle service gives back. The caller unregisters and deletes them."""
        surplus = [r for free in self.free.values() for r in free[1:]]
        self.remove(surplus)
        return surplus

    def remove(self, regions: list[Region]) -> None:
        for region in regions:
            self.free[region.model.name].remove(region)
            self.made.remove(region)

    def delete_all(self) -> None:
        for region in self.made:
            region.delete()
        self.made, self.free = [], {}

    def stale(self) -> list[str]:
        """Names of other processes' regions in the directory whose owner is gone; their files are
        deleted here (Triton may still hold them: unregister the names)."""
        names = []
        for path in self.directory.glob(PREFIX + "*"):
            if path.name.startswith(self.stem):
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:  # gone meanwhile, or not ours to open
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # its owner holds it
                continue
            else:
                path.unlink(missing_ok=True)
                names.append(path.name)
            finally:
                os.close(fd)
        return names
