import asyncio

from callweaver.runtime.clock import MonotonicClock, VirtualClock


async def test_virtual_clock_wakes_sleepers_in_order_at_their_deadlines() -> None:
    clock = VirtualClock()
    woke: list[tuple[str, int]] = []

    async def sleeper(name: str, at_s: float) -> None:
        await clock.sleep_until(int(at_s * 1e9))
        woke.append((name, clock.now_ns()))

    tasks = [asyncio.create_task(sleeper(n, t)) for n, t in [("b", 2.0), ("a", 1.0), ("c", 5.0)]]
    await asyncio.sleep(0)
    assert clock.sleepers == 3
    await clock.advance(2.5)
    assert woke == [("a", 1_000_000_000), ("b", 2_000_000_000)]
    assert clock.now_ns() == 2_500_000_000
    await clock.advance(10)
    assert woke[-1] == ("c", 5_000_000_000)
    await asyncio.gather(*tasks)


async def test_monotonic_clock_sleeps() -> None:
    clock = MonotonicClock()
    start = clock.now_ns()
    await clock.sleep_until(start + 5_000_000)
    assert clock.now_ns() >= start + 5_000_000
