"""The event loop's own floor for the latency measure: no framework at all.

A frame crossing callweaver's chain wakes 12 tasks one after the other (the call's input
pump, 10 actors, the output actor). This measures the same 12 wake-ups with the least code
asyncio allows (a deque and one future per wait), so the report can say how much of the
latency is the loop's and how much is the framework's.

    python -m bench.framework.floor [--loop uvloop] [--hops 12]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import statistics
import time
from collections.abc import Callable
from typing import Any


class _Box:
    __slots__ = ("items", "loop", "waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.items: collections.deque[int] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.loop = loop

    def put(self, item: int) -> None:
        self.items.append(item)
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> int:
        while not self.items:
            self.waiter = self.loop.create_future()
            await self.waiter
        return self.items.popleft()


async def _relay(inbox: _Box, out: _Box) -> None:
    while True:
        out.put(await inbox.get())


async def floor_latency(hops: int, samples: int = 5000, warmup: int = 500) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    boxes = [_Box(loop) for _ in range(hops)]
    sink = _Box(loop)
    tasks = [
        asyncio.create_task(_relay(boxes[i], boxes[i + 1] if i + 1 < hops else sink))
        for i in range(hops)
    ]
    await asyncio.sleep(0)
    lat = []
    for i in range(samples + warmup):
        t0 = time.perf_counter_ns()
        boxes[0].put(i)
        await sink.get()
        lat.append((time.perf_counter_ns() - t0) / 1000)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    kept = sorted(lat[warmup:])
    return {"hops": hops, "median_us": round(statistics.median(kept), 1),
            "p99_us": round(kept[int(len(kept) * 0.99)], 1)}  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.framework.floor")
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    p.add_argument("--hops", type=int, default=12)
    args = p.parse_args()
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if args.loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        result = runner.run(floor_latency(args.hops))
    result["loop"] = args.loop
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
