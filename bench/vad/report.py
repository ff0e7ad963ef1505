"""The VAD benchmark's section of ``docs/benchmarks.md``, rebuilt from one run's JSON.

Only the text between the section's markers is replaced (the section is appended when the
markers are absent), so the other benchmarks' sections are left as they are.
"""

from __future__ import annotations

from pathlib import Path

from bench import docs
from bench.vad.drivers import Json

BEGIN = "<!-- vad-bench:begin -->"
END = "<!-- vad-bench:end -->"
TARGET_CALLS = 100
TARGET_CPU_US = 60.0
TARGET_RSS_KB = 1024.0


def _targets(n: int, ours: Json) -> str:
    if n != TARGET_CALLS:
        return "-"
    misses = []
    if ours["cpu_us_per_call_frame"] > TARGET_CPU_US:
        misses.append("CPU")
    if ours["rss_kb_per_call"] > TARGET_RSS_KB:
        misses.append("RSS")
    return "yes" if not misses else "**no** (" + ", ".join(misses) + ")"


def summary_table(points: dict[str, Json]) -> str:
    lines = [
        "| calls | pipecat CPU (us/call-frame) | callweaver CPU (us/call-frame) "
        "| pipecat / callweaver | pipecat RSS (MB/call) | callweaver RSS (KB/call) "
        f"| targets met (<= {TARGET_CPU_US:.0f} us, <= 1 MB per call at {TARGET_CALLS}) |\n",
        "|---|---|---|---|---|---|---|\n",
    ]
    for n, row in points.items():
        theirs, ours = row["pipecat"], row["callweaver"]
        cpu_t, cpu_o = theirs["cpu_us_per_call_frame"], ours["cpu_us_per_call_frame"]
        cells = [
            n,
            f"{cpu_t:.0f}",
            f"{cpu_o:.0f}",
            f"{cpu_t / cpu_o:.1f}x" if cpu_o else "-",
            f"{theirs['rss_kb_per_call'] / 1024:.1f}",
            f"{ours['rss_kb_per_call']:,.0f}",
            _targets(int(n), ours),
        ]
        lines.append("| " + " | ".join(cells) + " |\n")
    return "".join(lines)


def detail_table(points: dict[str, Json]) -> str:
    lines = [
        "| calls | side | wall per tick, median (ms) | first call RSS (MB) "
        "| each further call RSS (KB) | threads | windows per inference, mean / max |\n",
        "|---|---|---|---|---|---|---|\n",
    ]
    for n, row in points.items():
        for key in ("pipecat", "callweaver"):
            r = row[key]
            further = r["rss_kb_per_additional_call"]
            batch = f"{r['mean_batch']:.1f} / {r['max_batch']}" if "max_batch" in r else "1 / 1"
            cells = [
                n,
                key,
                f"{r['wall_us_per_tick']['median'] / 1000:.2f}",
                f"{r['rss_kb_first_call'] / 1024:.1f}",
                "-" if further is None else f"{further:,.0f}",
                str(r["threads"]),
                batch,
            ]
            lines.append("| " + " | ".join(cells) + " |\n")
    return "".join(lines)


def paced_table(points: dict[str, Json]) -> str:
    lines = [
        "| calls | harness floor (us/call-frame) | pipecat CPU (us/call-frame) "
        "| callweaver CPU (us/call-frame) | pipecat / callweaver "
        "| callweaver windows per inference, mean / max "
        "| frame analysed after due, p99 (ms): pipecat / callweaver "
        "| frames late by > 20 ms: pipecat / callweaver "
        f"| CPU target met (<= {TARGET_CPU_US:.0f} us at {TARGET_CALLS}) |\n",
        "|---|---|---|---|---|---|---|---|---|\n",
    ]
    for n, row in points.items():
        floor, theirs, ours = row["floor"], row["pipecat"], row["callweaver"]
        base = floor["cpu_us_per_call_frame"]
        cpu_t = theirs["cpu_us_per_call_frame"] - base
        cpu_o = ours["cpu_us_per_call_frame"] - base
        met = "-" if int(n) != TARGET_CALLS else ("yes" if cpu_o <= TARGET_CPU_US else "**no**")
        cells = [
            n,
            f"{base:.0f}",
            f"{cpu_t:.0f}",
            f"{cpu_o:.0f}",
            f"{cpu_t / cpu_o:.1f}x" if cpu_o > 0 else "-",
            f"{ours['mean_batch']:.1f} / {ours['max_batch']}",
            f"{theirs['done_after_due_ms']['p99']:.1f} / {ours['done_after_due_ms']['p99']:.1f}",
            f"{theirs['late_fraction']:.1%} / {ours['late_fraction']:.1%}",
            met,
        ]
        lines.append("| " + " | ".join(cells) + " |\n")
    return "".join(lines)


def agreement_note(a: Json) -> str:
    shipped, exact = a["pipecat_as_shipped"], a["pipecat_without_state_reset"]
    gap = exact["prob_abs_diff"]["max"]
    verdict = (
        "so the reset is the only source of gaps, and batching the calls through one session "
        "changes nothing in what the model computes for each."
        if gap == 0
        else "**not identical: one side is fed differently; investigate before trusting the "
        "figures above.**"
    )
    return (
        f"**Same decisions.** {a['calls']} calls, {a['frames_per_call']} frames each, every "
        f"32 ms window scored by both (speech = probability >= {a['threshold']}): they agree on "
        f"{shipped['agree_fraction']:.1%} of {shipped['windows']:,} windows (speech in "
        f"{shipped['speech_fraction']['callweaver']:.0%} by callweaver, "
        f"{shipped['speech_fraction']['pipecat']:.0%} by pipecat; largest probability gap "
        f"{shipped['prob_abs_diff']['max']:.2f}). pipecat resets its model's state in quiet "
        "stretches every 2 s of audio, which callweaver does not do; with that reset turned "
        f"off the two agree on {exact['agree_fraction']:.1%} of windows and the largest "
        f"probability gap is {gap:g}, {verdict}\n"
    )


def render(result: Json) -> str:
    lockstep: dict[str, Json] = result["lockstep"]
    paced: dict[str, Json] = result["paced"]
    first = next(iter(lockstep.values()))["callweaver"]
    seconds = next(iter(paced.values()))["callweaver"]["seconds"]
    json_name = "vad-quick.json" if result["quick"] else "vad.json"
    parts = [
        BEGIN,
        "\n## VAD cost per call: callweaver's shared silero vs pipecat-ai 1.14.0's\n\n",
        "Measured by `python -m bench.vad`, both sides in one invocation "
        f"({result['total_s']:.0f} s), Python {result['python']}, {result['cpus_allowed']} "
        f"cores, load average {result['loadavg_before'][0]} before and "
        f"{result['loadavg_after'][0]} after. Raw JSON in `bench/results/{json_name}`.\n\n",
        "- **pipecat**: one `SileroVADAnalyzer(sample_rate=16000)` per call, each with its own "
        "ONNX session and executor thread; per frame, `await analyze_audio(frame)`, which is "
        "what pipecat's `VADController` does (model, loudness, state machine).\n",
        "- **callweaver**: one `SileroVAD` processor per call, default params; per frame, "
        "`await classify(frame)` (its per-frame work: buffering, model, level). All calls share "
        "the process's one ONNX session, which scores the windows waiting when it is free "
        "as one batch.\n",
        "- Input: `examples/audio/caller.wav` (speech with pauses, 16 kHz) in 20 ms frames, "
        "looped, each call at its own offset. CPU: the process's CPU time, all threads, per "
        "call per 20 ms frame. Every (mode, side, calls) point runs in a fresh process. "
        "callweaver runs with its defaults, which do not score windows under -60 dBFS (the "
        "file's pauses are digital silence); pipecat scores every window. The agreement "
        "check below scores every window on both sides.\n",
        "- **Lockstep**: every call gets its next frame in the same event-loop iteration, "
        f"ticks back to back ({first['ticks']} per point after {first['warmup']} of warm-up); "
        "calls join one frame apart over 8 frames, so their 32 ms windows complete on "
        "different frames. The best case for batching: all windows of a tick meet.\n",
        f"- **Paced**: {seconds:g} s of real time per point; call i's frames are due every "
        "20 ms at i/N of the period, as from calls on separate connections, so windows reach "
        "the model spread over time. The harness floor (the same pacing with no VAD) is "
        "subtracted from both sides' CPU.\n",
        "- RSS per call (lockstep runs): growth of the process's RSS from after the imports to "
        "all N calls running, divided by N. The first call of either side costs about 25 MB "
        "(onnxruntime's one-off set-up and a session); callweaver's later calls share that "
        "session, pipecat's each open their own.\n\n",
        "### Lockstep\n\n",
        summary_table(lockstep),
        "\n",
        detail_table(lockstep),
        "\n### Paced\n\n",
        paced_table(paced),
        "\n",
        agreement_note(result["agreement"]),
        "\n",
        END,
    ]
    return "".join(parts)


def write_section(path: Path, section: str) -> None:
    """Replace the marked section of ``path`` (append it if absent); the rest is kept."""
    docs.write_section(path, BEGIN, END, section)
