"""The services' tensors through system shared memory (services/common/shared_memory.py), on a real
Triton: the same answers as with the tensors inside the gRPC messages, regions registered once and
reused, given back when idle and on close, found again after a Triton restart, refused gracefully
where Triton cannot open them, and other processes' leftovers cleaned up."""

import asyncio
import fcntl
import os

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from fashionpixel.models import POSE, SEGMENTATION
from runtime.stack import Ports, Stack
from services.common.metrics import SHARED_MEMORY_BYTES, TRITON_CALLS
from services.common.settings import Settings
from services.common.shared_memory import PREFIX, SHM_DIR, Regions
from services.common.triton import Triton
from tests.conftest import ARTIFACTS
from tests.images import synthetic_photo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def triton(tmp_path_factory):
    stack = Stack(
        Ports.free(), log_dir=ARTIFACTS / "logs" / "shared-memory", env={"HOME": str(tmp_path_factory.mktemp("home"))}
    )
    try:
        stack.start(timeout=180, services=())
        yield stack
    finally:
        stack.stop()


def settings(stack: Stack, shared: bool = True) -> Settings:
    return Settings(triton_grpc_url=f"127.0.0.1:{stack.ports.triton_grpc}", triton_shared_memory=shared)


def registered(stack: Stack) -> set[str]:
    with grpcclient.InferenceServerClient(f"127.0.0.1:{stack.ports.triton_grpc}") as c:
        return {r["name"] for r in c.get_system_shared_memory_status(as_json=True).get("regions", {}).values()}


def files(client: Triton) -> set[str]:
    return {p.name for p in SHM_DIR.glob(client.regions.stem + "*")}


IMAGE = {"image": np.ascontiguousarray(synthetic_photo(256, 384))}


async def both_ways(stack: Stack) -> tuple[dict, dict, Triton]:
    shared, plain = Triton(settings(stack)), Triton(settings(stack, shared=False))
    try:
        return await shared.run(SEGMENTATION, IMAGE), await plain.run(SEGMENTATION, IMAGE), shared
    finally:
        await plain.close()


def calls(tensors: str) -> float:
    return TRITON_CALLS.labels(SEGMENTATION.name, tensors)._value.get()


def test_same_answers_regions_reused_and_given_back(triton):
    held_before, shared_before, messages_before = (
        SHARED_MEMORY_BYTES._value.get(),
        calls("shared_memory"),
        calls("messages"),
    )

    async def go():
        a, b, client = await both_ways(triton)
        assert a.keys() == b.keys() == set(SEGMENTATION.output_names)
        for name in a:
            assert np.array_equal(a[name], b[name])
        assert a["fashion"].dtype == np.float16
        [region] = client.regions.made
        assert SHARED_MEMORY_BYTES._value.get() - held_before == region.size
        assert calls("shared_memory") - shared_before == 1 and calls("messages") - messages_before == 1
        assert region.name in registered(triton) and files(client) == {region.name}
        again = await client.run(SEGMENTATION, IMAGE, ("fashion",))  # the same region, one output
        assert np.array_equal(again["fashion"], b["fashion"]) and client.regions.made == [region]
        await asyncio.gather(*(client.run(SEGMENTATION, IMAGE) for _ in range(4)))  # four at once: four regions
        assert len(client.regions.made) == 4 and len(registered(triton) & files(client)) == 4
        await client.give_back_idle_regions()  # idle: one is kept
        [kept] = [r.name for r in client.regions.made]
        assert files(client) == {kept} and registered(triton) & files(client) == {kept}
        await asyncio.gather(*(client.run(SEGMENTATION, IMAGE) for _ in range(4)))
        # idle again while calls come in: what is given back is out of the pool before Triton is told
        _, *late = await asyncio.gather(
            client.give_back_idle_regions(), *(client.run(SEGMENTATION, IMAGE) for _ in range(2))
        )
        # (the two may run as one batch, on the one-thread session: FP16 rounding differs by an ulp)
        assert all(np.allclose(out["fashion"], b["fashion"], atol=2e-3, rtol=0) for out in late)
        await client.close()
        assert files(client) == set() and kept not in registered(triton)
        assert SHARED_MEMORY_BYTES._value.get() == held_before

    asyncio.run(go())


def test_triton_restart_registers_the_regions_again(triton):
    async def go():
        client = Triton(settings(triton))
        try:
            first = await client.run(POSE, {"image": np.zeros(POSE.inputs[0].dims, np.uint8)})
            triton.stop_triton()
            triton.start_triton()
            triton.wait_until(triton.triton_url() + "/v2/health/ready", 180, triton.triton)
            assert registered(triton) == set()
            second = await client.run(POSE, {"image": np.zeros(POSE.inputs[0].dims, np.uint8)})
            assert np.array_equal(first["heatmaps"], second["heatmaps"])
            assert client.regions_refused_at is None and client.regions.made[0].name in registered(triton)
        finally:
            await client.close()

    asyncio.run(go())


def test_triton_that_cannot_open_the_regions_gets_the_tensors_in_messages(triton, tmp_path, caplog):
    """As when Triton runs on another host: regions outside its /dev/shm."""

    async def go():
        client = Triton(settings(triton))
        client.regions = Regions("test", directory=tmp_path)
        try:
            a = await client.run(SEGMENTATION, IMAGE)
            assert client.regions_refused_at is not None and list(tmp_path.iterdir()) == []
            b = await client.run(SEGMENTATION, IMAGE)  # not tried again
            assert client.regions.made == []
        finally:
            await client.close()
        plain = Triton(settings(triton, shared=False))
        try:
            c = await plain.run(SEGMENTATION, IMAGE)
        finally:
            await plain.close()
        for name in c:
            assert np.array_equal(a[name], c[name]) and np.array_equal(b[name], c[name])

    asyncio.run(go())
    assert "no shared memory with Triton" in caplog.text and "cannot open it" in caplog.text


def test_no_usable_shm_directory_gets_the_tensors_in_messages(triton, tmp_path, caplog):
    """A host or container without a writable /dev/shm: the call still succeeds."""

    async def go():
        client = Triton(settings(triton))
        client.regions = Regions("test", directory=tmp_path / "missing")
        try:
            out = await client.run(POSE, {"image": np.zeros(POSE.inputs[0].dims, np.uint8)})
            assert out["heatmaps"].shape == POSE.outputs[0].dims and client.regions_refused_at is not None
        finally:
            await client.close()

    asyncio.run(go())
    assert "cannot make a region" in caplog.text


def test_regions_of_dead_processes_are_deleted_live_ones_kept():
    dead, alive = SHM_DIR / f"{PREFIX}test-dead-{os.getpid()}", SHM_DIR / f"{PREFIX}test-alive-{os.getpid()}"
    dead.write_bytes(b"x" * 64)
    alive.write_bytes(b"x" * 64)
    holder = os.open(alive, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_SH)  # as a live service holds its regions
    try:
        stale = Regions("test").stale()
        assert dead.name in stale and not dead.exists()
        assert alive.name not in stale and alive.exists()
    finally:
        os.close(holder)
        alive.unlink(missing_ok=True)
        dead.unlink(missing_ok=True)
