"""The response cache's stores: memory per 10 000 entries, and the time of a put and a get.

1. **Memory**: a :class:`MemoryStore` filled with ``ENTRIES`` replies (a 40-character prompt,
   a 120-character reply), then the same with 2 s of 8 kHz 16-bit audio per reply (32 000
   bytes): the Python heap they take (``tracemalloc``: the entries, the store's maps and log),
   reported per 10 000 entries. ``--quick`` fills a tenth and scales.
2. **Latency** of each operation, p50/p95 over ``--ops`` calls: the memory store; a
   :class:`RedisStore` on a local ``redis-server`` (``tests/redis_server.py``): a put (local
   copy + SET and XADD in one round trip), a get of another worker's entry (a Redis round
   trip), a get of an entry already copied locally, the same for 2 s of audio, and
   ``entries_since`` of 100 new entries;
3. **Degraded**: the server killed: the first call (which finds out), then put and get while
   Redis is away (local only); and the time from restarting the server to sharing again.

``python -m bench.cache_store [--quick]`` writes its section of docs/benchmarks.md and
bench/results/cache_store.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from bench.docs import publish
from callweaver.runtime.latency import percentile
from callweaver.services.cache import CacheEntry, EntrySource, MemoryStore, Scope, audio_key
from callweaver.services.cache.redis_store import RedisStore

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the redis-server helper

BEGIN, END = "<!-- cache-store:begin -->", "<!-- cache-store:end -->"
ENTRIES = 10_000
AUDIO_S, AUDIO_RATE = 2.0, 8000
AUDIO_BYTES = int(AUDIO_S * AUDIO_RATE) * 2
SCOPE = Scope(deployment="clinic", language="en-US", flow_state="", prompt_version="0f3a9c21b7de")
REPLY = (
    "We're open Monday to Friday from eight in the morning to six in the evening, "
    "and on Saturday from nine to one."
)
TIMEOUT_S = 0.05


def make_entry(i: int) -> CacheEntry:
    return CacheEntry.new(
        scope=SCOPE,
        prompt=f"What time are you open on day number {i:05d}?",
        reply=f"{REPLY} ({i:05d})",
        source=EntrySource.LLM,
        now=time.time(),
    )


def us(values_ns: list[int]) -> dict[str, float]:
    values = [v / 1e3 for v in values_ns]
    return {"p50": percentile(values, 50), "p95": percentile(values, 95)}


async def timings(n: int, call: Callable[[int], Awaitable[object]]) -> dict[str, float]:
    took = []
    for i in range(n):
        start = time.perf_counter_ns()
        await call(i)
        took.append(time.perf_counter_ns() - start)
    return us(took)


# -- memory ------------------------------------------------------------------------------------


async def memory(n: int) -> dict[str, Any]:
    """Heap bytes per 10 000 entries: text only, then with audio."""
    out: dict[str, Any] = {"measured_entries": n}
    for with_audio in (False, True):
        gc.collect()
        tracemalloc.start()
        store = MemoryStore(max_entries=n, max_audio_bytes=n * AUDIO_BYTES)
        for i in range(n):
            e = make_entry(i)
            await store.put_entry(e)
            if with_audio:
                pcm = bytes([i % 256]) * AUDIO_BYTES
                await store.put_audio(audio_key(e, "joe", "pcm16@8000"), pcm, AUDIO_RATE)
        used, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        stats = await store.stats()
        assert stats["entries"] == n and stats["audio_clips"] == (n if with_audio else 0)
        name = "text_audio" if with_audio else "text"
        out[name] = {
            "mb_per_10k": used * (ENTRIES / n) / 1e6,
            "bytes_per_entry": used / n,
            "text_bytes_per_entry": stats["text_bytes"] / n,
            "audio_bytes_per_entry": stats["audio_bytes"] / n,
        }
        del store
    return out


# -- latency ---------------------------------------------------------------------------------


async def latency(ops: int) -> dict[str, Any]:
    from redis_server import RedisServer

    entries = [make_entry(i) for i in range(ops)]
    pcm = b"\x01\x00" * (AUDIO_BYTES // 2)
    keys = [audio_key(e, "joe", "pcm16@8000") for e in entries]
    out: dict[str, Any] = {}

    mem = MemoryStore()
    out["memory"] = {
        "put_entry": await timings(ops, lambda i: mem.put_entry(entries[i])),
        "get_entry": await timings(ops, lambda i: mem.get_entry(entries[i].id)),
        "put_audio": await timings(ops, lambda i: mem.put_audio(keys[i], pcm, AUDIO_RATE)),
        "get_audio": await timings(ops, lambda i: mem.get_audio(keys[i])),
    }

    with RedisServer() as server:
        a = RedisStore(server.url, prefix="bench:", timeout_s=TIMEOUT_S, retry_max_s=0.2)
        b = RedisStore(server.url, prefix="bench:", timeout_s=TIMEOUT_S, retry_max_s=0.2)
        async with a, b:
            _, cursor = await b.entries_since("")
            redis: dict[str, Any] = {
                "put_entry": await timings(ops, lambda i: a.put_entry(entries[i])),
                "get_entry_shared": await timings(ops, lambda i: b.get_entry(entries[i].id)),
                "get_entry_local": await timings(ops, lambda i: b.get_entry(entries[i].id)),
                "put_audio": await timings(ops, lambda i: a.put_audio(keys[i], pcm, AUDIO_RATE)),
                "get_audio_shared": await timings(ops, lambda i: b.get_audio(keys[i])),
            }
            got: list[int] = []

            async def since(_: int) -> None:
                nonlocal cursor
                found, cursor = await b.entries_since(cursor, limit=100)
                got.append(len(found))

            redis["entries_since_100"] = await timings(ops // 100, since)
            assert sum(got) == ops, got
            assert (await b.stats())["shared_hits"] == 2 * ops

            # degraded: the server hangs (the first call pays the timeout), then goes away
            later = [make_entry(ops + i) for i in range(ops + 2)]
            server.pause()
            start = time.perf_counter_ns()
            await a.put_entry(later[-1])
            hung = time.perf_counter_ns() - start
            server.resume()
            for _ in range(2000):  # 10 s at most
                if (await a.stats())["shared"]:
                    break
                await asyncio.sleep(0.005)
            server.kill()
            start = time.perf_counter_ns()
            await a.put_entry(later[-2])
            first = time.perf_counter_ns() - start
            degraded = {
                "hung_first_call_ms": hung / 1e6,
                "first_call_ms": first / 1e6,
                "put_entry": await timings(ops, lambda i: a.put_entry(later[i])),
                "get_entry": await timings(ops, lambda i: a.get_entry(entries[i].id)),
                "get_entry_miss": await timings(ops, lambda i: a.get_entry(f"missing-{i}")),
            }
            assert not (await a.stats())["shared"]
            server.start()
            start = time.perf_counter_ns()
            for _ in range(2000):  # 10 s at most
                if (await a.stats())["shared"]:
                    break
                await asyncio.sleep(0.005)
            else:
                raise RuntimeError("the store did not go back to Redis within 10 s")
            degraded["back_to_shared_ms"] = (time.perf_counter_ns() - start) / 1e6
            degraded["replayed_entries"] = ops + 1
            out["redis"] = redis
            out["degraded"] = degraded
    return out


# -- report ----------------------------------------------------------------------------------


def fmt(v: float, digits: int = 3) -> str:
    return f"{v:.{digits}f}"


def render(r: dict[str, Any]) -> str:
    m, lat = r["memory"], r["latency"]
    text, both = m["text"], m["text_audio"]
    mem_row = lat["memory"]
    red, deg = lat["redis"], lat["degraded"]

    def row(name: str, t: dict[str, float], digits: int = 1) -> str:
        return f"| {name} | {fmt(t['p50'], digits)} | {fmt(t['p95'], digits)} |"

    lines = [
        BEGIN,
        "## Response cache stores",
        "",
        f"`python -m bench.cache_store` ({r['date']}, Python {r['python']}, {r['cores']} cores, "
        f"redis-server on 127.0.0.1, `timeout_ms: {TIMEOUT_S * 1000:g}`).",
        "",
        f"Memory of a `MemoryStore` per 10 000 entries (Python heap, tracemalloc; "
        f"{m['measured_entries']} entries measured): replies only **{fmt(text['mb_per_10k'], 1)}"
        f" MB** ({fmt(text['bytes_per_entry'], 0)} bytes an entry, of which "
        f"{fmt(text['text_bytes_per_entry'], 0)} are its texts); with {AUDIO_S:g} s of "
        f"{AUDIO_RATE // 1000} kHz 16-bit audio each **{fmt(both['mb_per_10k'], 1)} MB** "
        f"({fmt(both['bytes_per_entry'], 0)} bytes an entry, {AUDIO_BYTES} of them audio). "
        "The audio is the cost: the default `max_audio_mb` (256) holds about 8 000 such clips "
        "per process; mu-law would halve it.",
        "",
        f"Time per call in microseconds, over {r['ops']} calls each (Redis on this machine: a "
        "round trip on a network adds its latency):",
        "",
        "| operation | p50 us | p95 us |",
        "|---|---|---|",
        row("memory: put_entry", mem_row["put_entry"]),
        row("memory: get_entry (hit)", mem_row["get_entry"]),
        row("memory: put_audio (2 s)", mem_row["put_audio"]),
        row("memory: get_audio (hit)", mem_row["get_audio"]),
        row("redis: put_entry (local + SET and XADD, one round trip)", red["put_entry"]),
        row("redis: get_entry, another worker's (a round trip)", red["get_entry_shared"]),
        row("redis: get_entry, copied locally", red["get_entry_local"]),
        row("redis: put_audio (2 s, 32 KB)", red["put_audio"]),
        row("redis: get_audio, another worker's", red["get_audio_shared"]),
        row("redis: entries_since, 100 new entries", red["entries_since_100"]),
        row("Redis down: put_entry (local)", deg["put_entry"]),
        row("Redis down: get_entry (local hit)", deg["get_entry"]),
        row("Redis down: get_entry (miss)", deg["get_entry_miss"]),
        "",
        f"Redis hanging (the process stopped with SIGSTOP): the first call took "
        f"{fmt(deg['hung_first_call_ms'], 1)} ms, the timeout, and put its entry locally; later "
        f"calls do not try Redis until it answers again. Redis killed: the first call that "
        f"finds out took {fmt(deg['first_call_ms'], 2)} ms (a reset connection is seen at once). "
        f"After the server came back (empty), "
        f"sharing resumed {fmt(deg['back_to_shared_ms'], 0)} ms later (reconnection attempts "
        f"back off up to `retry_max_s`, 0.2 s here, 5 s by default), after replaying the "
        f"{deg['replayed_entries']} entries written meanwhile.",
        END,
    ]
    return "\n".join(lines)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "memory": await memory(args.entries),
        "latency": await latency(args.ops),
        "ops": args.ops,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--entries", type=int, default=ENTRIES)
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="a tenth of the entries, no writes")
    args = parser.parse_args(argv)
    if args.quick:
        args.entries, args.ops = ENTRIES // 10, 200
    started = time.perf_counter()
    results = asyncio.run(measure(args))
    publish(results, render, name="cache_store", started=started, out=args.out, begin=BEGIN,
            end=END, write=not args.quick)  # fmt: skip


if __name__ == "__main__":
    main()
