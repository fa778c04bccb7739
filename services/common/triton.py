"""Async gRPC access to Triton: inference with deadlines, retries on UNAVAILABLE, readiness. `run`
calls a model through its registry entry (fashionpixel/models.py): Triton is the services' Network
(fashionpixel/networks.py).

Failures become problems the client understands: Triton unreachable → 503 with Retry-After,
deadline exceeded → 504. The gRPC channel reconnects by itself, with a short backoff cap so that a
restarted Triton is found again within about a second.

Tensors travel through system shared memory where Triton can open it (services/common/shared_memory.py;
`TRITON_SHARED_MEMORY`): a region is registered with Triton once, on its first use. A restarted Triton
has forgotten every registration: the call that finds its region unknown registers it again and is
retried. Where Triton cannot open the regions (it runs on another host, or in a container that does not
share the service's /dev/shm) the service says so and sends the tensors inside the gRPC messages, asking
again a minute later.
"""

import asyncio
import logging
import time

import numpy as np
import tritonclient.grpc.aio as grpcclient
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from fashionpixel.models import Model
from services.common.errors import Problem, unavailable
from services.common.metrics import INFER_SECONDS, TRITON_CALLS, TRITON_ERRORS
from services.common.settings import Settings
from services.common.shared_memory import Region, Regions

log = logging.getLogger("fashionpixel")
_MAX_MESSAGE = 2**31 - 1
_UNAVAILABLE = {"StatusCode.UNAVAILABLE", "StatusCode.CANCELLED", "StatusCode.UNKNOWN"}
_ASK_AGAIN_S = 60.0  # after Triton could not open our regions (e.g. a restarted container, a new /dev/shm)


def _is_unavailable(exc: InferenceServerException) -> bool:
    message = exc.message().lower()
    return (exc.status() or "") in _UNAVAILABLE or "unavailable" in message or "not ready" in message


def _request(
    inputs: dict[str, np.ndarray], outputs: list[str], region: Region | None
) -> tuple[list[grpcclient.InferInput], list[grpcclient.InferRequestedOutput]]:
    """The inputs and the wanted outputs of one call: in `region` (the inputs written into it), else
    the inputs' data in the message."""
    request = []
    for name, array in inputs.items():
        tensor = grpcclient.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
        if region is None:
            tensor.set_data_from_numpy(np.ascontiguousarray(array))
        else:
            region.view(name)[...] = array
            slot = region.slots[name]
            tensor.set_shared_memory(region.name, slot.nbytes, slot.offset)
        request.append(tensor)
    wanted = [grpcclient.InferRequestedOutput(name) for name in outputs]
    if region is not None:
        for output in wanted:
            slot = region.slots[output.name()]
            output.set_shared_memory(region.name, slot.nbytes, slot.offset)
    return request, wanted


class Triton:
    def __init__(self, settings: Settings, owner: str = "service"):
        self.settings = settings
        self.regions = Regions(owner) if settings.triton_shared_memory else None
        self.registered: set[str] = set()
        self.regions_refused_at: float | None = None  # when Triton could not open them (another host)
        self.swept = False  # the regions of dead processes, looked for once
        self.client = grpcclient.InferenceServerClient(
            settings.triton_grpc_url,
            channel_args=[
                ("grpc.max_send_message_length", _MAX_MESSAGE),
                ("grpc.max_receive_message_length", _MAX_MESSAGE),
                ("grpc.initial_reconnect_backoff_ms", 200),
                ("grpc.min_reconnect_backoff_ms", 200),
                ("grpc.max_reconnect_backoff_ms", 1000),
                ("grpc.enable_retries", 0),
            ],
        )

    async def close(self) -> None:
        if self.regions is not None:  # at once: a Triton that is gone costs one timeout, not one per region
            await asyncio.gather(*(self._unregister(name) for name in list(self.registered)))
            self.regions.delete_all()
        await self.client.close()

    async def run(
        self, model: Model, inputs: dict[str, np.ndarray], outputs: tuple[str, ...] = ()
    ) -> dict[str, np.ndarray]:
        """`model` on one example (no batch axis in or out); `outputs`: the ones wanted, default all."""
        names = list(outputs or model.output_names)
        batch = model.batch_of_one(inputs)
        region = await self._region(model)
        if region is None:
            out = await self.infer(model.name, batch, names)
            return {name: array[0] for name, array in out.items()}
        try:
            out = await self.infer(model.name, batch, names, region)
            return {name: array[0].copy() for name, array in out.items()}  # the region is lent to the next call
        finally:
            self.regions.give_back(region)

    async def infer(
        self, model: str, inputs: dict[str, np.ndarray], outputs: list[str], region: Region | None = None
    ) -> dict[str, np.ndarray]:
        """One inference, its tensors in `region` when given (outputs are then views of it), else in
        the messages; raises Problem(503/504) when Triton cannot answer."""
        request, wanted = _request(inputs, outputs, region)
        attempt, attempts, registered_again = 0, self.settings.triton_retries + 1, False
        while True:
            start = time.perf_counter()
            try:
                result = await self.client.infer(
                    model, request, outputs=wanted, client_timeout=self.settings.infer_timeout_s
                )
                INFER_SECONDS.labels(model).observe(time.perf_counter() - start)
                TRITON_CALLS.labels(model, "messages" if region is None else "shared_memory").inc()
                if region is not None:
                    return {name: region.view(name) for name in outputs}
                return {name: result.as_numpy(name) for name in outputs}
            except InferenceServerException as exc:
                status = exc.status() or ""
                unknown_region = status == "StatusCode.NOT_FOUND" and "shared memory" in exc.message()
                if region is not None and unknown_region and not registered_again:
                    registered_again = True
                    self.registered.clear()  # a restarted Triton: it knows none of our regions
                    if not await self._register(region):  # it cannot open them now, or is gone again
                        region = None
                        request, wanted = _request(inputs, outputs, None)
                    continue
                if status == "StatusCode.DEADLINE_EXCEEDED":
                    TRITON_ERRORS.labels(model, "timeout").inc()
                    raise Problem(
                        504,
                        f"inference on '{model}' timed out after {self.settings.infer_timeout_s} s",
                        type_="/problems/inference-timeout",
                    ) from None
                if _is_unavailable(exc):
                    TRITON_ERRORS.labels(model, "unavailable").inc()
                    attempt += 1
                    if attempt < attempts:
                        await asyncio.sleep(0.1 * 3 ** (attempt - 1))
                        continue
                    raise unavailable(
                        f"inference server unavailable for '{model}'", self.settings.retry_after_s
                    ) from None
                TRITON_ERRORS.labels(model, "error").inc()
                log.error("triton error on %s: %s %s", model, status, exc.message())
                raise Problem(502, f"inference on '{model}' failed", type_="/problems/inference-failed") from None

    async def _region(self, model: Model) -> Region | None:
        """A registered region for one call of `model`, or None: the tensors go in the messages."""
        if self.regions is None:
            return None
        if self.regions_refused_at is not None:
            if time.monotonic() - self.regions_refused_at < _ASK_AGAIN_S:
                return None
            self.regions_refused_at = None
        if not self.swept:
            self.swept = True
            for name in self.regions.stale():
                await self._unregister(name)
        try:
            region = self.regions.take(model)
        except OSError as exc:  # no /dev/shm here, or it is full or read-only
            self._refuse(f"cannot make a region in {self.regions.directory}: {exc}")
            return None
        if region.name in self.registered or await self._register(region):
            return region
        self.regions.give_back(region)
        if self.regions_refused_at is not None:
            self.regions.remove([region])
            region.delete()
        return None

    async def _register(self, region: Region) -> bool:
        """Register `region` with Triton. False when Triton is unreachable (the call then fails the
        usual way) or cannot open it: then the calls leave shared memory alone for _ASK_AGAIN_S."""
        try:
            await self.client.register_system_shared_memory(
                region.name, region.key, region.size, client_timeout=self.settings.ready_timeout_s
            )
        except InferenceServerException as exc:
            if exc.status() == "StatusCode.ALREADY_EXISTS":
                self.registered.add(region.name)
                return True
            if not _is_unavailable(exc):
                self._refuse(f"Triton at {self.settings.triton_grpc_url} cannot open it: {exc.message()}")
            return False
        self.registered.add(region.name)
        return True

    def _refuse(self, reason: str) -> None:
        self.regions_refused_at = time.monotonic()
        log.warning(
            "no shared memory with Triton (%s): tensors go in the gRPC messages for %.0f s", reason, _ASK_AGAIN_S
        )

    async def _unregister(self, name: str) -> None:
        try:
            await self.client.unregister_system_shared_memory(name, client_timeout=self.settings.ready_timeout_s)
        except InferenceServerException:
            pass  # Triton is gone, and with it the registration
        self.registered.discard(name)

    async def give_back_idle_regions(self) -> None:
        """When idle: every free region beyond one per model is forgotten by Triton and deleted."""
        if self.regions is None:
            return
        for region in self.regions.remove_surplus():  # out of the pool first: a call may come meanwhile
            await self._unregister(region.name)
            region.delete()

    async def readiness(self, models: list[str]) -> tuple[bool, str]:
        """(ready, reason): Triton reachable and every model loaded."""
        timeout = self.settings.ready_timeout_s
        try:
            if not await self.client.is_server_ready(client_timeout=timeout):
                return False, "inference server is not ready"
            for model in models:
                if not await self.client.is_model_ready(model, client_timeout=timeout):
                    return False, f"model '{model}' is not ready"
        except InferenceServerException as exc:
            return False, f"inference server unreachable at {self.settings.triton_grpc_url}: {exc.message()}"
        return True, "ok"
