"""What a handler hands the pipelines of fashionpixel/ (a FastAPI dependency): the networks (Triton),
where CPU work runs (the service's small thread pool, so that the event loop stays free) and the
request's Server-Timing stages."""

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Callable

import numpy as np
from fastapi import Request, Response

from fashionpixel.networks import Network
from services.common.imaging import ENCODERS
from services.common.timing import Timings


@dataclass(frozen=True)
class Pipeline:
    network: Network  # Triton, in the services
    executor: Executor
    timings: Timings
    alone: bool = False  # no other request of this service in progress: its cores are this request's

    async def cpu(self, fn: Callable, *args):
        """Run blocking CPU work (numpy, OpenCV, CRF, PNG) on the service's thread pool."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def stage(self, name: str):
        return self.timings.stage(name)

    async def image(self, image: np.ndarray, headers: dict[str, str], output: str = "png") -> Response:
        """`image` as the answer, PNG (or `output`: a format of imaging.ENCODERS), encoded on the thread
        pool in the "encode" stage."""
        encode, media_type = ENCODERS[output]
        with self.stage("encode"):
            body = await self.cpu(encode, image)
        return Response(body, media_type=media_type, headers=headers)


async def pipeline(request: Request) -> Pipeline:
    state = request.app.state
    return Pipeline(state.triton, state.executor, request.state.timings, alone=state.load.inflight <= 1)
