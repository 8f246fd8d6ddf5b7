"""Runs a named scenario through the real stack and judges it against its expectations.

Used by `manage.py simulate_call`, `make demo` and the end-to-end tests. The
evidence comes from three places that do not share code with the bridge: the
simulated caller's timeline (what was heard, when), the Realtime simulator's
recording (what the bridge told the model), and the rows the server persisted.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async

from calls.models import BargeInEvent, CallSession, PlayoutLog
from simulators.realtime import RealtimeSession
from simulators.scenarios import Scenario
from simulators.stack import LocalStack
from simulators.twilio import Timeline

# How close the truncate point must be to what the caller really heard.
HEARD_TOLERANCE_MS = 40
# The call must close this soon after the goodbye's last audio played.
HANGUP_WITHIN_MS = 500
# A tone "heard in full" may miss at most this much (one frame, plus rounding).
FULL_TOLERANCE_MS = 25


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class ScenarioResult:
    scenario: Scenario
    call_sid: str
    timeline: Timeline
    session: RealtimeSession | None
    call: CallSession | None
    barge_ins: list[BargeInEvent]
    logs: list[PlayoutLog]
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.ok for check in self.checks)

    def logs_of(self, kind: str) -> list[PlayoutLog]:
        return [row for row in self.logs if row.kind == kind]

    def model_received(self, kind: str) -> list[dict[str, Any]]:
        if self.session is None:
            return []
        return [r.event for r in self.session.recording.received if r.event.get("type") == kind]


@database_sync_to_async
def _load_rows(
    call_sid: str,
) -> tuple[CallSession | None, list[BargeInEvent], list[PlayoutLog]]:
    call = CallSession.objects.filter(call_sid=call_sid).first()
    if call is None:
        return None, [], []
    return call, list(call.barge_ins.order_by("offset_ms")), list(call.playout_logs.all())


async def _wait_recorded(call_sid: str, timeout_s: float) -> None:
    # The server is another process, with no event to await: poll its row, bounded.
    ended = database_sync_to_async(
        lambda: CallSession.objects.filter(call_sid=call_sid, ended_at__isnull=False).exists()
    )
    deadline = time.monotonic() + timeout_s
    while not await ended() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)


async def run_scenario(
    stack: LocalStack, scenario: Scenario, timeout_s: float = 30
) -> ScenarioResult:
    """One call, start to end; returns once the server has recorded the whole call.

    The server writes its last rows before it closes the model's socket, so
    the call is complete once that socket closed, unless the model's side
    closed first (a fault scenario): then we wait for the row's end time.
    """
    stack.queue_script(scenario.realtime)
    sessions_before = len(stack.realtime.sessions)
    caller = stack.caller(scenario.caller)
    try:
        timeline = await caller.run(timeout_s=timeout_s)
    finally:
        await caller.aclose()
    session = (
        stack.realtime.sessions[sessions_before]
        if len(stack.realtime.sessions) > sessions_before
        else None
    )
    if session is not None:
        await stack.realtime.wait_for(lambda: session.closed, timeout_s)
    if session is None or session.faults_applied:
        await _wait_recorded(caller.call_sid, timeout_s)
    call, barge_ins, logs = await _load_rows(caller.call_sid)
    result = ScenarioResult(scenario, caller.call_sid, timeline, session, call, barge_ins, logs)
    result.checks = judge(result)
    return result


def judge(result: ScenarioResult) -> list[Check]:
    expect = result.scenario.expect
    timeline = result.timeline
    call = result.call
    silent = len(result.logs_of("user_speech_ai_silent"))
    checks = [
        Check("call recorded", call is not None and call.ended_at is not None,
              "ended_at set" if call is not None and call.ended_at else "no end recorded"),
        Check("end reason", call is not None and call.end_reason == expect.end_reason,
              f"{call.end_reason if call else None!r}, expected {expect.end_reason!r}"),
        Check("closed by", timeline.closed_by == expect.closed_by,
              f"{timeline.closed_by}, expected {expect.closed_by}"),
        Check("no underruns", not timeline.underruns,
              ", ".join(f"{u.gap_ms:.0f} ms in tone {u.tone}" for u in timeline.underruns)
              or "none"),
        Check("barge-ins", len(result.barge_ins) == expect.barge_ins,
              f"{len(result.barge_ins)}, expected {expect.barge_ins}"),
        Check("speech while AI silent", silent == expect.ai_silent_speech,
              f"{silent}, expected {expect.ai_silent_speech}"),
    ]  # fmt: skip
    checks += _barge_in_checks(result)
    for tone in expect.heard_in_full:
        heard = timeline.heard_ms_by_tone().get(tone, 0.0)
        wanted = result.scenario.reply_ms(tone)
        checks.append(Check(f"response {tone} heard in full", heard >= wanted - FULL_TOLERANCE_MS,
                            f"{heard:.0f} of {wanted} ms"))  # fmt: skip
    if expect.goodbye_tone is not None:
        checks += _goodbye_checks(result, expect.goodbye_tone)
    cancelled = result.logs_of("hangup_cancelled")
    checks.append(Check("hangup cancelled", bool(cancelled) == expect.hangup_cancelled,
                        f"{len(cancelled)} cancellation(s)"))  # fmt: skip
    return checks


def _barge_in_checks(result: ScenarioResult) -> list[Check]:
    expect = result.scenario.expect
    if not expect.barge_ins or len(result.barge_ins) != expect.barge_ins:
        return []
    timeline = result.timeline
    event = result.barge_ins[0]
    tone = expect.interrupted_tone
    checks = [
        Check(
            "Twilio buffer cleared", len(timeline.clears) == 1, f"{len(timeline.clears)} clear(s)"
        )
    ]
    if timeline.clears and tone is not None:
        after = timeline.heard_ms_after(timeline.clears[0].at, tone)
        checks.append(Check("no audio of the cancelled response after the clear", after == 0,
                            f"{after:.0f} ms of response {tone} heard after it"))  # fmt: skip
        heard = timeline.heard_ms_by_tone().get(tone, 0.0)
        truncates = result.model_received("conversation.item.truncate")
        end_ms = truncates[0]["audio_end_ms"] if truncates else None
        checks.append(Check(
            f"truncated to what was heard (±{HEARD_TOLERANCE_MS} ms)",
            end_ms is not None and abs(end_ms - heard) <= HEARD_TOLERANCE_MS
            and event.audio_end_ms == end_ms,
            f"audio_end_ms={end_ms}, caller heard {heard:.0f} ms",
        ))  # fmt: skip
    cancels = len(result.model_received("response.cancel"))
    if expect.model_still_generating is not None:
        checks.append(Check("response.cancel only while generating",
                            (cancels > 0) == expect.model_still_generating,
                            f"{cancels} response.cancel sent"))  # fmt: skip
    checks.append(Check("barge-in while audio still playing", event.playout_remaining_ms > 0,
                        f"playout_remaining_ms={event.playout_remaining_ms}"))  # fmt: skip
    return checks


def _goodbye_checks(result: ScenarioResult, tone: int) -> list[Check]:
    timeline = result.timeline
    last = timeline.last_heard(tone)
    closed = timeline.closed_at
    if last is None or closed is None:
        return [Check("hangup right after the goodbye", False, "goodbye not heard or call open")]
    gap_ms = (closed - last) * 1000
    drains = result.logs_of("drain_completed")
    echoed = bool(drains) and drains[0].details.get("final_mark_echoed") is True
    return [
        Check(f"hangup within {HANGUP_WITHIN_MS} ms of the goodbye's end",
              0 <= gap_ms <= HANGUP_WITHIN_MS, f"closed {gap_ms:.0f} ms after the last audio"),
        Check("drain waited for the final mark", echoed,
              f"{len(drains)} drain(s), final mark echoed: {echoed}"),
    ]  # fmt: skip


def database_url(settings_dict: dict[str, Any]) -> str:
    """A DATABASE_URL for a child process to open the database this one uses."""
    engine = settings_dict["ENGINE"]
    name = settings_dict["NAME"]
    if engine.endswith("sqlite3"):
        if str(name) == ":memory:" or "mode=memory" in str(name):
            raise ValueError("an in-memory SQLite database cannot be shared with the server")
        return f"sqlite:///{name}"
    if engine.endswith("postgresql"):
        user = settings_dict.get("USER") or ""
        password = settings_dict.get("PASSWORD") or ""
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{auth}{host}:{port}/{name}"
    raise ValueError(f"unsupported database engine for simulation: {engine}")


def describe(result: ScenarioResult) -> list[str]:
    """The call as a readable timeline: seconds since the stream started, who, what."""
    timeline = result.timeline
    t0 = timeline.stream_started_at or 0.0
    lines: list[tuple[float, str, str]] = []
    for tone, start, end in _heard_runs(timeline):
        lines.append((start - t0, "caller", f"hears AI response {tone} until +{end - t0:.2f}s "
                                            f"({(end - start) * 1000:.0f} ms)"))  # fmt: skip
    for at in timeline.speech_started_at:
        lines.append((at - t0, "caller", "starts speaking"))
    for clear in timeline.clears:
        dropped = f"{clear.dropped_ms:.0f} ms of buffered audio dropped"
        returned = f"{len(clear.marks_returned)} marks returned"
        lines.append((clear.at - t0, "twilio", f"clear: {dropped}, {returned}"))
    for gap in timeline.underruns:
        lines.append(
            (gap.at - t0, "caller", f"UNDERRUN: {gap.gap_ms:.0f} ms gap in response {gap.tone}")
        )
    for row in result.logs:
        text = _describe_row(row)
        if text:
            lines.append((row.offset_ms / 1000, "bridge", text))
    if timeline.closed_at is not None:
        lines.append((timeline.closed_at - t0, timeline.closed_by or "?", "call closed"))
    return [
        f"  +{at:6.2f}s  {who:<7} {what}" for at, who, what in sorted(lines, key=lambda x: x[0])
    ]


def _heard_runs(timeline: Timeline) -> list[tuple[int, float, float]]:
    runs: list[tuple[int, float, float]] = []
    for segment in timeline.heard:
        if segment.tone <= 0:
            continue
        if runs and runs[-1][0] == segment.tone and segment.start - runs[-1][2] < 0.05:
            runs[-1] = (segment.tone, runs[-1][1], segment.end)
        else:
            runs.append((segment.tone, segment.start, segment.end))
    return runs


def _describe_row(row: PlayoutLog) -> str:
    d = row.details
    if row.kind == "barge_in":
        return (
            f"BARGE-IN ({row.playout_status}): clear sent in {d.get('reaction_ms')} ms, "
            f"truncated {d.get('item_id') or '-'} at audio_end_ms={d.get('audio_end_ms')}, "
            f"response cancelled: {d.get('response_cancelled')}"
        )
    if row.kind == "user_speech_ai_silent":
        return f"caller speech while AI silent ({row.playout_status}): not a barge-in"
    if row.kind == "response_started":
        return f"model starts response {d.get('response_id')}"
    if row.kind == "drain_started":
        return f"drain before hangup: expecting {d.get('expected_wait_ms')} ms"
    if row.kind == "drain_completed":
        return (
            f"drain done after {d.get('actual_wait_ms')} ms "
            f"(expected {d.get('expected_wait_ms')}, "
            f"final mark echoed: {d.get('final_mark_echoed')})"
        )
    if row.kind in {"end_call_requested", "hangup_cancelled", "model_error", "stream_ended"}:
        return f"{row.get_kind_display().lower()}: " + ", ".join(f"{k}={v}" for k, v in d.items())
    return ""
