"""Figures of one benchmark run from independent evidence, and the summary over runs."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.generators import Usage
from benchmarks.loadgen import ANSWER_MS, ANSWER_TONE, GREETING_TONE

EXPECTED_ENDS = ("caller_hangup", "agent_hangup")
FULL_TOLERANCE_MS = 25  # as in calls.demo.simulation
REACTION_P99_LIMIT_MS = 10.0


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass
class Evidence:
    calls: list[dict[str, Any]]
    sessions: list[dict[str, Any]]
    usage: Usage


@dataclass
class RunFigures:
    server: str
    calls: int
    repeat: int
    usage: Usage
    refused: str = ""
    """Why this run gives no figures (a generator ran out of core), or empty."""
    failed: int = 0
    failures: list[str] = field(default_factory=list)
    call_s: float = 0.0
    caught: int = 0
    extra_barge_ins: int = 0
    reaction_ms: list[float] = field(default_factory=list)
    server_reaction_ms: list[float] = field(default_factory=list)
    stop_ms: list[float] = field(default_factory=list)
    """The caller's first voiced frame to the last of the greeting they heard (ms): when
    they stopped hearing the AI, by a clear or by the answer held running out."""
    truncate_err_ms: list[float] = field(default_factory=list)
    """Truncation minus what the caller heard (ms): > 0 the model is told of audio the
    caller never heard, < 0 it forgets audio they did."""
    setup_ms: list[float] = field(default_factory=list)
    """`start` sent by the caller to the greeting's `response.create` received by the
    stand-in (the wire): the session connected and configured, the stream claimed,
    the greeting asked for. (`session.update` may precede `start`: calls.live.preopen.)"""
    server_setup_ms: list[float] = field(default_factory=list)
    """The server's own record: `start` handled to the session ready and the greeting asked."""
    call_setup_ms: list[float] = field(default_factory=list)
    """The voice webhook asked to the greeting's `response.create` received: the whole
    set-up as far as we are in it (Twilio's own delays excluded)."""
    webhook_ms: list[float] = field(default_factory=list)
    """The voice webhook asked to its TwiML received."""
    connect_ms: list[float] = field(default_factory=list)
    """Connecting to the model (its handshake answered), from when that began: at
    the voice webhook for a session opened ahead, so it may exceed the set-up."""
    opened_ahead: int = 0
    late_p95_ms: list[float] = field(default_factory=list)
    """Per call, the server's own record: how late it read the caller's frames (p95),
    by Twilio's media clock: the event loop's lateness as the calls felt it."""
    late_max_ms: list[float] = field(default_factory=list)
    underruns: int = 0
    underrun_notes: list[str] = field(default_factory=list)
    answers_in_full: int = 0
    goodbyes: int = 0

    @property
    def cpu_ms_per_call_s(self) -> float:
        return 1000 * self.usage.server_cpu_s / self.call_s if self.call_s else float("nan")

    @property
    def cpu_pct(self) -> float:
        return 100 * self.usage.server_cpu_s / self.usage.wall_s

    @property
    def rss_per_call_mb(self) -> float:
        return (self.usage.rss_peak_mb - self.usage.rss_before_mb) / self.calls

    @property
    def truncate_abs_ms(self) -> list[float]:
        return [abs(error) for error in self.truncate_err_ms]

    @property
    def holds(self) -> bool:
        """100% caught, no underruns, reaction p99 within the limit, and a valid run."""
        return (
            not self.refused
            and self.caught == self.calls
            and self.underruns == 0
            and percentile(self.reaction_ms, 99) <= REACTION_P99_LIMIT_MS
        )


def _rows(call_sids: list[str]) -> dict[str, Any]:
    from calls.models import CallSession

    return {
        call.call_sid: call
        for call in CallSession.objects.filter(call_sid__in=call_sids).prefetch_related("barge_ins")
    }


def _server_setup(call_sids: list[str]) -> list[dict[str, Any]]:
    from callcore.records import RecordKind
    from calls.models import PlayoutLog

    return list(
        PlayoutLog.objects.filter(
            call__call_sid__in=call_sids, kind=RecordKind.MODEL_SESSION_OPENED
        ).values_list("details", flat=True)
    )


def _lateness(call_sids: list[str]) -> list[dict[str, Any]]:
    """Each call's record of how late the server read its frames (`stream_ended`)."""
    from callcore.records import RecordKind
    from calls.models import PlayoutLog

    return list(
        PlayoutLog.objects.filter(
            call__call_sid__in=call_sids, kind=RecordKind.STREAM_ENDED
        ).values_list("details", flat=True)
    )


def judge(
    server: str,
    calls: int,
    repeat: int,
    evidence: Evidence,
    cpu_limit: float,
    generator_cores: int,
) -> RunFigures:
    """Figures of one run; none (`refused`) when the load generation ran out of CPU.

    A generator process above `cpu_limit` % of a core, or all of them together
    above that share of the `generator_cores` they run on, delays its own
    evidence: what it reports is its lag, not the server's.
    """
    figures = RunFigures(server, calls, repeat, evidence.usage)
    loads = evidence.usage.generators
    busy = [f"{g.role} at {g.cpu_pct:.0f}% of a core" for g in loads if g.cpu_pct > cpu_limit]
    total = sum(g.cpu_pct for g in loads) / max(generator_cores, 1)
    if total > cpu_limit:
        busy.append(f"generators together at {total:.0f}% of their {generator_cores} core(s)")
    figures.refused = ", ".join(busy)
    sessions = {s["session_id"]: s for s in evidence.sessions}
    rows = _rows([call["call_sid"] for call in evidence.calls])
    setups = _server_setup(list(rows))
    figures.server_setup_ms = [float(d["setup_ms"]) for d in setups if "setup_ms" in d]
    figures.connect_ms = [float(d["connect_ms"]) for d in setups if "connect_ms" in d]
    figures.opened_ahead = sum(bool(d.get("opened_ahead")) for d in setups)
    for ended in _lateness(list(rows)):
        if "late_p95_ms" in ended:
            figures.late_p95_ms.append(float(ended["late_p95_ms"]))
            figures.late_max_ms.append(float(ended["late_max_ms"]))
    for call in evidence.calls:
        row = rows.get(call["call_sid"])
        if call["error"] or row is None or row.end_reason not in EXPECTED_ENDS:
            figures.failed += 1
            reason = call["error"] or (row.end_reason if row else "no call row")
            figures.failures.append(f"{call['call_sid']}: {reason}")
            continue
        if call["start_sent_at"] is not None and call["closed_at"] is not None:
            figures.call_s += call["closed_at"] - call["start_sent_at"]
        session = sessions.get(row.model_session_id)
        figures.underruns += len(call["underruns"])
        figures.underrun_notes += [
            f"{u['gap_ms']:.0f} ms gap {u['into_ms']:.0f} ms into response {u['tone']}"
            for u in call["underruns"]
        ]
        heard = {int(tone): ms for tone, ms in call["heard_ms"].items()}
        figures.answers_in_full += heard.get(ANSWER_TONE, 0.0) >= ANSWER_MS - FULL_TOLERANCE_MS
        figures.goodbyes += row.end_reason == "agent_hangup"
        barge_ins = list(row.barge_ins.all())
        figures.server_reaction_ms += [event.reaction_ms for event in barge_ins]
        if call["webhook_sent_at"] is not None and call["webhook_answered_at"] is not None:
            figures.webhook_ms.append(
                1000 * (call["webhook_answered_at"] - call["webhook_sent_at"])
            )
        if session is not None and session["greeting_requested_at"] is not None:
            asked = session["greeting_requested_at"]
            figures.setup_ms.append(1000 * (asked - call["start_sent_at"]))
            if call["webhook_sent_at"] is not None:
                figures.call_setup_ms.append(1000 * (asked - call["webhook_sent_at"]))
        if not (barge_ins and call["clears_at"]):
            continue
        figures.caught += 1
        figures.extra_barge_ins += len(barge_ins) - 1
        if session is not None and session["speech_started_at"]:
            wire_ms = 1000 * (call["clears_at"][0] - session["speech_started_at"][0])
            figures.reaction_ms.append(wire_ms)
        last_heard = call.get("greeting_last_heard_at")
        if call["speech_started_at"] and last_heard is not None:
            figures.stop_ms.append(1000 * (last_heard - call["speech_started_at"][0]))
        if barge_ins[0].audio_end_ms is not None:
            error = barge_ins[0].audio_end_ms - heard.get(GREETING_TONE, 0.0)
            figures.truncate_err_ms.append(error)
    return figures


def print_run(f: RunFigures) -> None:
    u = f.usage
    gens = ", ".join(
        f"{g.role} {g.cpu_pct:.0f}% (lag p99 {g.loop_lag_p99_ms:.0f} ms)" for g in u.generators
    )
    lines = [
        f"  {f.server} N={f.calls} #{f.repeat}: {f.failed} failed; server CPU "
        f"{u.server_cpu_s:.2f} s ({f.cpu_pct:.0f}% of a core, {f.cpu_ms_per_call_s:.2f} ms per "
        f"call-second), RSS {u.rss_before_mb:.0f} -> {u.rss_peak_mb:.0f} MB "
        f"({1024 * f.rss_per_call_mb:.0f} KiB per call); frames read late p95 "
        f"{median(f.late_p95_ms):.0f} ms (median of calls), worst "
        f"{max(f.late_max_ms, default=0):.0f} ms",
        f"    caught {f.caught}/{f.calls} (+{f.extra_barge_ins} extra); reaction on the wire "
        f"p50 {median(f.reaction_ms):.1f} / p99 {percentile(f.reaction_ms, 99):.1f} ms "
        f"(server-side p99 {percentile(f.server_reaction_ms, 99):.2f} ms); stopped hearing "
        f"the AI p50 {median(f.stop_ms):.0f} / p99 {percentile(f.stop_ms, 99):.0f} ms after "
        "they began",
        f"    truncation error |p50| {median(f.truncate_abs_ms):.0f} / |p95| "
        f"{percentile(f.truncate_abs_ms, 95):.0f} ms, signed p5 "
        f"{percentile(f.truncate_err_ms, 5):.0f} / p50 {median(f.truncate_err_ms):.0f} / p95 "
        f"{percentile(f.truncate_err_ms, 95):.0f} ms ({sum(e > 40 for e in f.truncate_abs_ms)} "
        "beyond 40 ms)",
        f"    underruns {f.underruns}; set-up p50 {median(f.setup_ms):.0f} / p95 "
        f"{percentile(f.setup_ms, 95):.0f} ms on the wire, {median(f.server_setup_ms):.0f} / "
        f"{percentile(f.server_setup_ms, 95):.0f} ms in the server (connecting to the model "
        f"{median(f.connect_ms):.0f} / {percentile(f.connect_ms, 95):.0f}, {f.opened_ahead} "
        f"opened ahead); answers heard in full {f.answers_in_full}; goodbyes {f.goodbyes}",
        f"    from the webhook: TwiML p50 {median(f.webhook_ms):.0f} / p95 "
        f"{percentile(f.webhook_ms, 95):.0f} ms, greeting asked p50 "
        f"{median(f.call_setup_ms):.0f} / p95 {percentile(f.call_setup_ms, 95):.0f} ms",
        f"    generators: {gens}",
    ]
    if f.refused:
        lines.append(f"    NO FIGURES: load generator out of core ({f.refused})")
    lines += [f"    failed: {note}" for note in f.failures[:5]]
    lines += [f"    underrun: {note}" for note in f.underrun_notes[:5]]
    print("\n".join(lines), flush=True)


COLUMNS: list[tuple[str, Callable[[RunFigures], float], str]] = [
    ("caught%", lambda f: 100 * f.caught / f.calls, "{:.0f}"),
    ("react p50", lambda f: median(f.reaction_ms), "{:.1f}"),
    ("react p99", lambda f: percentile(f.reaction_ms, 99), "{:.1f}"),
    ("stop p99", lambda f: percentile(f.stop_ms, 99), "{:.0f}"),
    ("trunc p50", lambda f: median(f.truncate_abs_ms), "{:.0f}"),
    ("trunc p95", lambda f: percentile(f.truncate_abs_ms, 95), "{:.0f}"),
    ("tr s.p5", lambda f: percentile(f.truncate_err_ms, 5), "{:.0f}"),
    ("tr s.p95", lambda f: percentile(f.truncate_err_ms, 95), "{:.0f}"),
    ("underruns", lambda f: f.underruns, "{:.0f}"),
    ("ms/call-s", lambda f: f.cpu_ms_per_call_s, "{:.2f}"),
    ("late p95", lambda f: median(f.late_p95_ms), "{:.0f}"),
    ("KiB/call", lambda f: 1024 * f.rss_per_call_mb, "{:.0f}"),
    ("setup p50", lambda f: median(f.setup_ms), "{:.0f}"),
    ("setup p95", lambda f: percentile(f.setup_ms, 95), "{:.0f}"),
    ("greet p95", lambda f: percentile(f.call_setup_ms, 95), "{:.0f}"),
    ("gen max%", lambda f: max(g.cpu_pct for g in f.usage.generators), "{:.0f}"),
    ("gen sum%", lambda f: sum(g.cpu_pct for g in f.usage.generators), "{:.0f}"),
]


def print_summary(runs: list[RunFigures]) -> None:
    valid = [f for f in runs if not f.refused]
    refused = len(runs) - len(valid)
    print(
        f"\nMedians over valid repetitions ({refused} refused: a generator out of core); "
        "reaction and set-up in ms, truncation error in ms; set-up from `start`, greet from "
        "the voice webhook, each to the greeting's response.create:"
    )
    print(f"  {'server':<8}{'N':>5}{'runs':>5}" + "".join(f"{n:>10}" for n, _, _ in COLUMNS))
    best: dict[str, int] = {}
    for server in dict.fromkeys(f.server for f in runs):
        for calls in dict.fromkeys(f.calls for f in runs):
            mine = [f for f in valid if f.server == server and f.calls == calls]
            if not mine:
                print(f"  {server:<8}{calls:>5}{0:>5}  no valid run")
                continue
            cells = [fmt.format(statistics.median(map(value, mine))) for _, value, fmt in COLUMNS]
            print(f"  {server:<8}{calls:>5}{len(mine):>5}" + "".join(f"{c:>10}" for c in cells))
            if all(f.holds for f in mine):
                best[server] = max(best.get(server, 0), calls)
    for server in dict.fromkeys(f.server for f in runs):
        held = best.get(server)
        print(
            f"  {server}: highest N holding 100% caught, 0 underruns, reaction p99 <= "
            f"{REACTION_P99_LIMIT_MS:.0f} ms in every valid run: {held or 'none of those tried'}"
        )
