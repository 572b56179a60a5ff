"""The frame queue: bounded by count and by bytes, waits for files, drops for live streams."""

from __future__ import annotations

import asyncio

import pytest

from stream.pacing.frame_queue import FrameQueue
from tests.live_support import run


def test_the_byte_bound_holds_and_an_empty_queue_takes_any_one_item():
    async def main() -> None:
        queue: FrameQueue[str] = FrameQueue(max_items=10, max_bytes=1000)
        assert not queue.full_for(5000)  # empty: even an oversized item fits
        await queue.put("huge", 5000)
        assert queue.full_for(1) and queue.bytes == 5000
        assert await queue.get() == "huge" and queue.bytes == 0
        for name in "abc":
            await queue.put(name, 300)
        assert queue.full_for(101) and not queue.full_for(100)
        assert (queue.qsize(), queue.bytes) == (3, 900)

    run(main())


def test_the_count_bound_holds_for_small_items():
    async def main() -> None:
        queue: FrameQueue[int] = FrameQueue(max_items=2, max_bytes=10**9)
        await queue.put(1, 1)
        await queue.put(2, 1)
        assert queue.full_for(0)

    run(main())


def test_put_waits_until_a_get_makes_room_and_order_is_kept():
    async def main() -> list[int]:
        queue: FrameQueue[int] = FrameQueue(max_items=5, max_bytes=100)
        await queue.put(1, 60)
        waiting = asyncio.ensure_future(queue.put(2, 60))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # 120 bytes would not fit
        first = await queue.get()
        await asyncio.wait_for(waiting, 1)
        return [first, await queue.get()]

    assert run(main()) == [1, 2]


def test_drop_all_empties_the_queue_and_wakes_a_waiting_put():
    async def main() -> tuple[int, int, int]:
        queue: FrameQueue[int] = FrameQueue(max_items=2, max_bytes=100)
        await queue.put(1, 10)
        await queue.put(2, 10)
        waiting = asyncio.ensure_future(queue.put(3, 10))
        await asyncio.sleep(0.01)
        dropped = await queue.drop_all()
        await asyncio.wait_for(waiting, 1)
        return dropped, await queue.get(), queue.bytes

    assert run(main()) == (2, 3, 0)


@pytest.mark.parametrize("size", [0, 1, 99])
def test_a_get_waits_for_an_item(size):
    async def main() -> int:
        queue: FrameQueue[int] = FrameQueue(max_items=1, max_bytes=100)
        getting = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0.01)
        assert not getting.done()
        await queue.put(size, size)
        return await getting

    assert run(main()) == size
