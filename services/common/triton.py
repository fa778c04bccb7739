"""Async gRPC access to Triton: inference with deadlines, retries on UNAVAILABLE, readiness. `run`
calls a model through its registry entry (fashionpixel/models.py): Triton is the services' Network
(fashionpixel/networks.py).

Failures become problems the client understands: Triton unreachable → 503 with Retry-After,
deadline exceeded → 504. The gRPC channel reconnects by itself, with a short backoff cap so that a
restarted Triton is found again within about a second.
"""

import asyncio
import logging
import time

import numpy as np
import tritonclient.grpc.aio as grpcclient
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from fashionpixel.models import Model
from services.common.errors import Problem, unavailable
from services.common.metrics import INFER_SECONDS, TRITON_ERRORS
from services.common.settings import Settings

log = logging.getLogger("fashionpixel")
_MAX_MESSAGE = 2**31 - 1
_UNAVAILABLE = {"StatusCode.UNAVAILABLE", "StatusCode.CANCELLED", "StatusCode.UNKNOWN"}


class Triton:
    def __init__(self, settings: Settings):
        self.settings = settings
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
        await self.client.close()

    async def run(
        self, model: Model, inputs: dict[str, np.ndarray], outputs: tuple[str, ...] = ()
    ) -> dict[str, np.ndarray]:
        """`model` on one example (no batch axis in or out); `outputs`: the ones wanted, default all."""
        names = list(outputs or model.output_names)
        out = await self.infer(model.name, model.batch_of_one(inputs), names)
        return {name: array[0] for name, array in out.items()}

    async def infer(self, model: str, inputs: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
        """One inference; raises Problem(503/504) when Triton cannot answer."""
        request = []
        for name, array in inputs.items():
            tensor = grpcclient.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
            tensor.set_data_from_numpy(np.ascontiguousarray(array))
            request.append(tensor)
        wanted = [grpcclient.InferRequestedOutput(name) for name in outputs]
        attempts = self.settings.triton_retries + 1
        for attempt in range(attempts):
            start = time.perf_counter()
            try:
                result = await self.client.infer(
                    model, request, outputs=wanted, client_timeout=self.settings.infer_timeout_s
                )
                INFER_SECONDS.labels(model).observe(time.perf_counter() - start)
                return {name: result.as_numpy(name) for name in outputs}
            except InferenceServerException as exc:
                status = exc.status() or ""
                if status == "StatusCode.DEADLINE_EXCEEDED":
                    TRITON_ERRORS.labels(model, "timeout").inc()
                    raise Problem(
                        504,
                        f"inference on '{model}' timed out after {self.settings.infer_timeout_s} s",
                        type_="/problems/inference-timeout",
                    ) from None
                if (
                    status in _UNAVAILABLE
                    or "unavailable" in exc.message().lower()
                    or "not ready" in exc.message().lower()
                ):
                    TRITON_ERRORS.labels(model, "unavailable").inc()
                    if attempt + 1 < attempts:
                        await asyncio.sleep(0.1 * 3**attempt)
                        continue
                    raise unavailable(
                        f"inference server unavailable for '{model}'", self.settings.retry_after_s
                    ) from None
                TRITON_ERRORS.labels(model, "error").inc()
                log.error("triton error on %s: %s %s", model, status, exc.message())
                raise Problem(502, f"inference on '{model}' failed", type_="/problems/inference-failed") from None
        raise AssertionError("unreachable")

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
