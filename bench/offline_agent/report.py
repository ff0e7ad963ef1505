"""The offline agent's section of ``docs/benchmarks.md`` and the terminal summary, from a run's
JSON.

Only the text between the section's markers is replaced (``bench.docs.write_section``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from bench.offline_agent import Json
from bench.offline_agent.calls import LEAD_S, SPREAD_S, STAGE_NAMES, TAIL_S, V2V, WAIT_S
from bench.offline_agent.measure import DEGRADED, GOAL_MS
from callweaver.runtime.latency import percentile

BEGIN, END = "<!-- offline-agent:begin -->", "<!-- offline-agent:end -->"


def ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def p(row: Json | None, key: str) -> str:
    return "-" if not row else ms(row[key])


def section(r: Json) -> str:
    serial, cold = r["serial"], r["cold"]
    st, ok = serial["stages"], serial["correctness"]
    v2v = st[V2V]
    met = "met" if v2v and v2v["p95"] <= GOAL_MS else "**missed**"
    lines = [
        BEGIN,
        "\n## The offline agent end to end (`configs/local.yaml`)\n",
        f"`{r['command']}` on {r['date']}, {r['cores']} cores, Python {r['python']}, "
        f"{r['loop']} event loop, commit {r['commit']}, load average before "
        f"{r['loadavg_before'][0]:.2f} (whole run {r['seconds'] / 60:.1f} min). The real stack of "
        "`configs/local.yaml` (silero VAD -> whisper tiny.en -> declared answers by MiniLM -> "
        "piper) run as `callweaver simulate` runs a file call, paced in real time. The callers "
        "are flite voices (rms, awb, kal16; the bot's fallback is slt) asking for every "
        "declared answer, and some questions it has no answer for. Raw JSON in "
        "`bench/results/offline_agent.json`.\n",
        f"### Voice-to-voice, one call at a time ({ok['turns']} turns)\n",
        f"One phone call per question: {LEAD_S:g} s of silence, the question, the reply plays "
        f"for {TAIL_S:g} s, hang-up. Every figure is ms after the end of the caller's speech.\n",
        "| stage | n | p50 | p95 | p99 | goal |",
        "|---|---|---|---|---|---|",
    ]
    for name in (*STAGE_NAMES, V2V):
        row, label = st[name], f"**{name}**" if name == V2V else name
        goal = f"<= {GOAL_MS:.0f} ms: {met}" if name == V2V else ""
        lines.append(
            f"| {label} | {row['n'] if row else 0} | {p(row, 'p50')} | {p(row, 'p95')} | "
            f"{p(row, 'p99')} | {goal} |"
        )
    lines += [
        "",
        "Where the time goes (ms from one stage to the next):\n",
        "| step | p50 | p95 | max |",
        "|---|---|---|---|",
        *(
            f"| {label} | {p(row, 'p50')} | {p(row, 'p95')} | {p(row, 'max')} |"
            for label, row in serial["components"].items()
        ),
        "",
        "By reply: the TTS synthesizes the reply's first piece (its first sentence, or that "
        "sentence's first clause when it is long) before any audio plays.\n",
        "| reply | turns | first piece (chars) | TTS to first audio, p50 ms | v2v p50 ms |",
        "|---|---|---|---|---|",
    ]
    by_reply: dict[str, list[Json]] = defaultdict(list)
    for t in serial["turns"]:
        by_reply[t["said"]].append(t)
    for said, ts in sorted(by_reply.items()):
        piece = r["first_pieces"].get(said)
        tts = tts_ms(ts)
        v = [x for t in ts if (x := t["stages"][V2V]) is not None]
        lines.append(
            f"| {said} | {len(ts)} | {len(piece) if piece else '-'} | "
            f"{ms(percentile(tts, 50)) if tts else '-'} | {ms(percentile(v, 50)) if v else '-'} |"
        )
    wer = "-" if ok["wer"] is None else f"{ok['wer']:.1%}"
    q = ok["questions"]
    lines += [
        "",
        f"Correctness over the {q} questions: transcript word for word {ok['transcripts_exact']}"
        f"/{q} (WER {wer}); the right reply {ok['answered_right']}/{q}, where the question's "
        f"own text gets {ok['text_alone_right']}/{q} (the difference is recognition errors); "
        "the reply audio, transcribed back by whisper, is nearest the reply chosen "
        f"{ok['reply_audio_heard_as_said']}/{ok['reply_audio_checked']}. Questions the VAD "
        f"split into two turns (a pause of 200 ms inside): {ok['split_questions']}.\n",
        "| # | voice | asked | heard | expected | answered | score | v2v ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, t in enumerate(serial["turns"], 1):
        wrong = "" if t["said"] == t["expected"] else " (wrong)"
        score = "-" if t["score"] is None else f"{t['score']:.2f}"
        lines.append(
            f"| {i} | {t['voice']} | {t['asked']} | {t['heard']} | {t['expected']} | "
            f"{t['said']}{wrong} | {score} | {ms(t['stages'][V2V])} |"
        )
    ct = cold["turns"][0] if cold["turns"] else None
    same = tts_ms([t for t in serial["turns"] if ct and t["said"] == ct["said"]])
    lines += [
        "",
        "### The first call of a process\n",
        "Its start loads every model (later calls share them); the same question as turn 1.\n",
        "| | first call | later calls |",
        "|---|---|---|",
        f"| voice-to-voice (ms) | {ms(ct['stages'][V2V]) if ct else '-'} | "
        f"{ms(by_reply_v2v(serial['turns'], ct))} |",
        f"| ... from the caller's end of speech on the audio clock (ms) | "
        f"{ms(ct['v2v_caller_ms']) if ct else '-'} | "
        f"{ms(percentile(c, 50)) if (c := caller_clock(serial['turns'])) else '-'} (p50, all) |",
        f"| TTS to first audio, same reply (ms) | {ms(tts_ms([ct])[0]) if ct else '-'} | "
        f"{ms(percentile(same, 50)) if same else '-'} |",
        f"| event loop's longest stall (longest GC), ms | {ms(cold['loop_lag']['max_ms'])} "
        f"({ms(cold['loop_lag']['gc_max_ms'])}) | {ms(serial['loop_lag']['max_ms'])} "
        f"({ms(serial['loop_lag']['gc_max_ms'])}) |",
    ]
    lines += memory_lines(r["memory"])
    lines += concurrency_lines(r["concurrency"])
    lines += ["", END]
    return "\n".join(lines)


def tts_ms(turns: Sequence[Json]) -> list[float]:
    return [
        s["first_tts_audio"] - s["first_token"]
        for t in turns
        if (s := t["stages"])["first_tts_audio"] is not None and s["first_token"] is not None
    ]


def by_reply_v2v(turns: Sequence[Json], like: Json | None) -> float | None:
    v = [x for t in turns if like and t["said"] == like["said"] and (x := t["stages"][V2V])]
    return percentile(v, 50) if v else None


def ratio(row: Json | None) -> str:
    return "-" if not row else f"{row['p50']:.2f}x ({row['n']})"


def caller_clock(turns: Sequence[Json]) -> list[float]:
    return [v for t in turns if (v := t["v2v_caller_ms"]) is not None]


def memory_lines(m: Json) -> list[str]:
    lines = ["", "### Memory of one process holding every offline model\n"]
    if "error" in m:
        return [*lines, f"Not measured: {m['error'][-300:]}"]
    lines += [
        "A fresh interpreter loads each model in turn (psutil RSS after each; a library two "
        "models share counts for the first), then runs two calls of the question above. flite "
        "is a separate process, started only when piper fails.\n",
        "| step | time (s) | RSS added (MB) | RSS (MB) |",
        "|---|---|---|---|",
    ]
    steps = m["steps"]
    for prev, s in zip([None, *steps], steps, strict=False):
        added = "-" if prev is None else f"{(s['rss'] - prev['rss']) / 2**20:.0f}"
        lines.append(f"| {s['step']} | {s['seconds']:.2f} | {added} | {s['rss'] / 2**20:.0f} |")
    first, models, last = steps[0]["rss"], steps[-3]["rss"] - steps[1]["rss"], steps[-1]["rss"]
    v2v = [", ".join(ms(v) for v in c["v2v_ms"]) for c in m["calls"]]
    lines += [
        f"| **total** over the interpreter | | {(last - first) / 2**20:.0f} | "
        f"{last / 2**20:.0f} (peak {m['peak_rss'] / 2**20:.0f}) |",
        "",
        f"The four models add {models / 2**20:.0f} MB once loaded; the calls' voice-to-voice: "
        f"{' then '.join(v2v)} ms.",
    ]
    return lines


def concurrency_lines(c: Json) -> list[str]:
    lines = [
        "",
        "### Concurrent calls in one process\n",
        f"N paced calls at once, each asking {c['per_call']} questions (its own flite voice) and "
        f"waiting for each reply to play plus {WAIT_S:g} s; the calls start at random offsets "
        f"within {SPREAD_S:g} s. Criterion: N is sustained while every question got its reply "
        f"and the voice-to-voice p95 stays within {c['slowdown']:g}x the p95 of the calls one "
        f"at a time ({ms(c['baseline_p95'])} ms), for N and every smaller N; adding calls stops "
        f"once the p95 passes {DEGRADED:g}x.\n",
        "| calls | turns | v2v p50 | v2v p95 | vs one call | STT after endpoint p95 "
        "| TTS first audio p95 | TTS vs one call, alone / alongside (p50, turns) "
        "| right replies | cores busy | loop stall max (GC max), ms | whisper decodes per turn |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, row in c["points"].items():
        comp, ok, v = row["components"], row["correctness"], row["v2v"]
        lines.append(
            f"| {n} | {v['n'] if v else 0} | {p(v, 'p50')} | {p(v, 'p95')} | "
            f"{row['p95_vs_one_call']:.2f}x{'' if row['sustained'] else ' (no)'} | "
            f"{p(comp['transcript after endpoint (STT)'], 'p95')} | "
            f"{p(comp['first sentence synthesized (TTS)'], 'p95')} | "
            f"{ratio(row['tts_vs_one_call_alone'])} / {ratio(row['tts_vs_one_call_alongside'])} | "
            f"{ok['answered_right']}/{ok['questions']} | {row['cpu_cores']:.2f} | "
            f"{ms(row['loop_lag']['max_ms'])} ({ms(row['loop_lag']['gc_max_ms'])}) | "
            f"{row['whisper_decodes'] / v['n'] if v else 0:.1f} |"
        )
    lines += [
        "",
        "TTS vs one call: the time to synthesize a reply's first piece over the same reply's "
        "p50 one call at a time, for turns whose synthesis ran alone and for turns while "
        "other calls' replies were being synthesized (piper has two workers of one thread "
        "each, whisper two threads, on two cores).",
    ]
    top = " (the most tried)" if c["sustained"] == c["largest_tried"] else ""
    lines += [
        "",
        f"Sustained: **{c['sustained']}** concurrent calls{top}; p95 within the "
        f"{GOAL_MS:.0f} ms goal up to {c['within_goal']}.",
    ]
    return lines


def summary(r: Json) -> str:
    """A few lines for the terminal."""
    st, ok, c = r["serial"]["stages"], r["serial"]["correctness"], r["concurrency"]
    lines = ["", f"{'ms after end of caller speech':32} {'p50':>5} {'p95':>5} {'p99':>5}"]
    for name in (*STAGE_NAMES, V2V):
        row = st[name]
        lines.append(f"{name:32} {p(row, 'p50'):>5} {p(row, 'p95'):>5} {p(row, 'p99'):>5}")
    lines.append(
        f"goal v2v <= {GOAL_MS:.0f} ms; right replies {ok['answered_right']}/{ok['questions']}, "
        f"exact transcripts {ok['transcripts_exact']}/{ok['questions']}"
    )
    for n, row in c["points"].items():
        lines.append(
            f"{n} calls: v2v p50 {p(row['v2v'], 'p50')} p95 {p(row['v2v'], 'p95')} ms "
            f"({row['p95_vs_one_call']:.2f}x one call), cores busy {row['cpu_cores']:.2f}"
        )
    lines.append(f"sustained: {c['sustained']} calls (p95 within {c['slowdown']:g}x one call)")
    return "\n".join(lines)
