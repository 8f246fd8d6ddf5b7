"""Runs a named scenario through the real stack and judges it against its expectations.

Used by `manage.py simulate_call`, `make demo` and the end-to-end tests. The
evidence comes from three places that do not share code with the bridge: the
simulated caller's timeline (what was heard, when), the Realtime simulator's
recording (what the bridge told the model), and the rows the server persisted,
as read directly and as the review (`calls.review`) judges them.
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from django.utils import timezone

from callcore.protocol.realtime import TRANSFER_TOOL
from callcore.records import FindingRule, RecordKind
from callcore.tools import NOT_RUN, UNKNOWN_TOOL
from calls.models import BargeInEvent, CallSession, PlayoutLog
from calls.review.diagnostics import find_calls, load_diagnostics
from calls.review.findings import CallDiagnostics, Thresholds
from simulators.link import LinkProfile
from simulators.realtime import FunctionCallOutput, RealtimeSession, ResponseCreate
from simulators.scenarios import Scenario
from simulators.stack import LocalStack
from simulators.twilio import Timeline, Underrun

# How close the truncate point must be to what the caller really heard, on a
# steady link. A jittery one adds its jitter: the clear's own trip is late by
# up to the jitter, unknowable when it is sent, and a call has measured its
# round trip on one or two clean echoes when its first barge-in comes (each as
# jittery), so the error spans up to twice the jitter either way; about one
# jitter covers it but for the rarest draws (benchmarks/bench_links.py).
HEARD_TOLERANCE_MS = 40
# The call must close this soon after the goodbye's last audio played.
HANGUP_WITHIN_MS = 500
# ... or this soon when its final mark never comes back: the drain's deadline is
# PLAYOUT_DRAIN_MARGIN_MS (400) and the link's slack past the estimated end.
LOST_MARK_HANGUP_WITHIN_MS = 1000
# A tone "heard in full" may miss at most this much (one frame, plus rounding).
FULL_TOLERANCE_MS = 25
# While a tool runs the caller never hears more silence than this: the holding line
# is asked for after TOOL_HOLD_AFTER_MS (700) of it, and the model's answer and the
# link take their time before it is heard.
TOOL_SILENCE_MS = 2000
# Twilio dials the transfer this soon after the handoff's final mark came back: the
# stream closes on the echo, and the action URL answers at once.
TRANSFER_WITHIN_MS = 300
# A gap in an answer that begins about this long after the caller began a sound (the
# stop target, TURN_STOP_TARGET_MS, less the hold's 20 ms), give or take the slack, is
# the bridge holding the answer for the sound, not an underrun.
HELD_GAP_S = 0.43
HELD_GAP_SLACK_S = 0.06


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
    # The call as the review sees it (its suspects flag it for a reviewer).
    diagnostics: CallDiagnostics | None = None
    checks: list[Check] = field(default_factory=list)
    # The network between Twilio and the server (None: local).
    link: LinkProfile | None = None

    @property
    def heard_tolerance_ms(self) -> float:
        return HEARD_TOLERANCE_MS + (self.link.jitter_ms if self.link else 0.0)

    @property
    def passed(self) -> bool:
        return all(check.ok for check in self.checks)

    def logs_of(self, kind: str) -> list[PlayoutLog]:
        return [row for row in self.logs if row.kind == kind]

    def model_received(self, kind: str) -> list[dict[str, Any]]:
        if self.session is None:
            return []
        return [r.event for r in self.session.recording.received if r.event.get("type") == kind]

    def function_call_outputs(self) -> list[FunctionCallOutput]:
        return [] if self.session is None else self.session.recording.function_call_outputs()

    def response_creates(self) -> list[ResponseCreate]:
        return [] if self.session is None else self.session.recording.response_creates()

    def calls_made(self) -> dict[str, tuple[str, float]]:
        """The function calls the model made: call id -> (name, when its arguments were done)."""
        if self.session is None:
            return {}
        return {
            str(r.event.get("call_id")): (str(r.event.get("name")), r.at)
            for r in self.session.recording.sent
            if r.type == "response.function_call_arguments.done"
        }


@database_sync_to_async
def _load_rows(
    call_sid: str,
) -> tuple[CallSession | None, list[BargeInEvent], list[PlayoutLog]]:
    call = CallSession.objects.filter(call_sid=call_sid).first()
    if call is None:
        return None, [], []
    return call, list(call.barge_ins.order_by("offset_ms")), list(call.playout_logs.all())


@database_sync_to_async
def _diagnose(call_sid: str) -> CallDiagnostics | None:
    """The call as the review judges it, with the review's default thresholds."""
    try:
        rows = find_calls([call_sid])
    except ValueError:  # the server never recorded the call
        return None
    return load_diagnostics(rows, Thresholds(), timezone.now())[0].diagnostics


async def _wait_recorded(call_sid: str, timeout_s: float) -> None:
    # The server is another process, with no event to await: poll its row, bounded.
    ended = database_sync_to_async(
        lambda: CallSession.objects.filter(call_sid=call_sid, ended_at__isnull=False).exists()
    )
    deadline = time.monotonic() + timeout_s
    while not await ended() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)


async def run_scenario(
    stack: LocalStack,
    scenario: Scenario,
    timeout_s: float = 30,
    link: LinkProfile | None = None,
    server_index: int = 0,
) -> ScenarioResult:
    """One call, start to end; returns once the server has recorded the whole call.

    `link` is the network between Twilio and the server, each way (none: the
    scenario's own, else a local link). The server writes its last rows before it closes the
    model's socket, so the call is complete once that socket closed, unless
    the model's side closed first (a fault scenario): then we wait for the
    row's end time.
    """
    link = link or scenario.link
    stack.queue_script(scenario.realtime)
    for script in scenario.replacements:
        stack.queue_script(script)
    sessions_before = len(stack.realtime.sessions)
    options: dict[str, Any] = {} if link is None else {"uplink": link, "downlink": link}
    if scenario.from_number is not None:
        options["from_number"] = scenario.from_number
    caller = stack.caller(scenario.caller, server_index=server_index, **options)
    try:
        timeline = await caller.run(timeout_s=timeout_s)
    finally:
        await caller.aclose()
    stack.drop_queued_scripts()
    sessions = stack.realtime.sessions[sessions_before:]
    session = sessions[0] if sessions else None
    await stack.realtime.wait_for(lambda: all(s.closed for s in sessions), timeout_s)
    if session is None or any(s.faults_applied for s in sessions) or len(sessions) > 1:
        await _wait_recorded(caller.call_sid, timeout_s)
    call, barge_ins, logs = await _load_rows(caller.call_sid)
    result = ScenarioResult(scenario, caller.call_sid, timeline, session, call, barge_ins, logs)
    result.diagnostics = await _diagnose(caller.call_sid)
    result.link = link
    result.checks = judge(result) + _link_checks(result, link)
    return result


# How close the call's measured round trip must come to the simulated one.
RTT_TOLERANCE_MS = 20


def _link_checks(result: ScenarioResult, link: LinkProfile | None) -> list[Check]:
    """The call's measured round trip against the one the simulated link really gave.

    The stand-in knows, for the first mark of each run of audio, how long that
    run's first frame spent on the link, and the least the way back took (the
    media timestamps let the call take each echo's own uplink jitter out); their
    median is the round trip the call had to find.
    """
    if link is None or result.call is None:
        return []
    given = result.timeline.round_trips_ms()
    if not given:
        return []
    simulated = statistics.median(given)
    measured = result.call.link_rtt_p50_ms
    ok = measured is not None and abs(measured - simulated) <= RTT_TOLERANCE_MS
    return [
        Check(
            f"round trip measured (±{RTT_TOLERANCE_MS} ms)",
            ok,
            f"{measured} ms over {result.call.link_samples} sample(s), "
            f"the link gave {simulated:.0f} ms (median of {len(given)})",
        )
    ]


def held_for_a_sound(result: ScenarioResult, gap: Underrun) -> bool:
    """Whether a gap in an answer is the bridge holding it at a sound's stop target (it
    says it paused the answer, and the gap began `HELD_GAP_S` after a sound the caller
    began, give or take a frame), not the audio running late; how long it lasts is the
    gap checks' to judge."""
    if not result.logs_of("answer_paused"):
        return False
    began = gap.at - gap.gap_ms / 1000
    return any(
        abs(began - (s.started_at + HELD_GAP_S)) <= HELD_GAP_SLACK_S for s in result.timeline.sounds
    )


def unprompted_underruns(result: ScenarioResult) -> list[Underrun]:
    """The caller's underruns, but for the answer held for a sound of theirs."""
    return [gap for gap in result.timeline.underruns if not held_for_a_sound(result, gap)]


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
        Check("no underruns", not (underruns := unprompted_underruns(result)),
              ", ".join(f"{u.gap_ms:.0f} ms in tone {u.tone}" for u in underruns) or "none"),
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
    checks += _truncate_rejected_checks(result)
    checks += _unheard_deleted_checks(result)
    checks += _agent_checks(result)
    checks += _tool_checks(result)
    checks += _transfer_checks(result)
    checks += _turn_checks(result)
    recovered = len(result.logs_of("model_recovered"))
    checks.append(Check("model sessions replaced", recovered == expect.model_recoveries,
                        f"{recovered}, expected {expect.model_recoveries}"))  # fmt: skip
    said = " / ".join(timeline.said) or "nothing"
    checks.append(Check("caller told", bool(timeline.said) == expect.caller_told, said))
    if expect.flagged:
        raised = sorted({s.rule for s in result.diagnostics.suspects} if result.diagnostics else ())
        checks.append(Check(f"the review flags {', '.join(expect.flagged)}",
                            set(expect.flagged) <= set(raised),
                            f"suspects raised: {', '.join(raised) or 'none'}"))  # fmt: skip
    return checks


def _agent_checks(result: ScenarioResult) -> list[Check]:
    """The agent the host's hooks chose for the caller, as the call's row keeps it."""
    wanted = result.scenario.expect.agent
    if wanted is None:
        return []
    call = result.call
    name = call.agent_name if call is not None else None
    source = call.agent.get("source") if call is not None else None
    detail = f"{name!r} ({source}), expected {wanted!r}"
    if name != wanted:
        number = result.scenario.from_number or "the stand-in's"
        detail += f": the host's hooks choose it by the caller's number, {number}"
    return [Check("the host's agent", name == wanted, detail)]


def _tool_checks(result: ScenarioResult) -> list[Check]:
    """The host's tools the call ran: each with the model's arguments, its result given
    back and an answer asked, and no long silence while it ran (a holding line fills it)."""
    expect = result.scenario.expect
    records = result.logs_of(RecordKind.TOOL_CALL)
    ran = [(row.details.get("name"), row.details.get("outcome")) for row in records]
    if not expect.tools and not ran:
        return []
    wanted = list(expect.tools)
    checks = [Check("tools run", ran == wanted, f"{ran or 'none'}, expected {wanted}")]
    scripted = {call.name: call for _, call in result.scenario.scripted_calls()}
    outputs = {output.call_id: output for output in result.function_call_outputs()}
    creates = result.response_creates()
    made = result.calls_made()
    for row in records:
        details = row.details
        name, call_id = str(details.get("name")), str(details.get("call_id"))
        script = scripted.get(name)
        # A call never run (unknown to the agent, or cut off) keeps no arguments.
        kept = details.get("outcome") not in (UNKNOWN_TOOL, NOT_RUN)
        if kept and script is not None and not isinstance(script.arguments, str):
            asked, given = dict(script.arguments), details.get("arguments")
            checks.append(
                Check(
                    f"{name} run with the model's arguments",
                    given == asked,
                    f"{given}, the model asked {asked}",
                )
            )
        output = outputs.get(call_id)
        answered = output is not None and any(create.at > output.at for create in creates)
        checks.append(
            Check(
                f"{name}'s result given to the model, an answer asked",
                answered and details.get("answer_asked") is True,
                f"ran {details.get('duration_ms')} ms, result {output.output if output else None}",
            )
        )
        if call_id in made and output is not None:
            silent_ms = _longest_silence_ms(result.timeline, made[call_id][1], output.at)
            checks.append(
                Check(
                    f"no silence over {TOOL_SILENCE_MS} ms while {name} ran",
                    silent_ms <= TOOL_SILENCE_MS,
                    f"the longest the caller heard nothing: {silent_ms:.0f} ms",
                )
            )
    if expect.holding_lines:
        holds = result.logs_of(RecordKind.TOOL_HOLD)
        holding = [c for c in creates if c.response.get("tool_choice") == "none"]
        silences = ", ".join(f"{row.details.get('silent_ms')} ms" for row in holds) or "-"
        checks.append(
            Check(
                f"holding lines while a tool ran (at least {expect.holding_lines})",
                min(len(holds), len(holding)) >= expect.holding_lines,
                f"{len(holding)} asked of the model, after silences of {silences}",
            )
        )
    return checks


def _longest_silence_ms(timeline: Timeline, called_at: float, output_at: float) -> float:
    """The longest the caller heard no AI audio from a tool's call until the first answer
    that began after its result went to the model (or the call's end)."""
    after = [at for tone, at in timeline.tone_started_at.items() if tone > 0 and at > output_at]
    until = min(after, default=timeline.closed_at or output_at)
    longest, last_end = 0.0, called_at
    for segment in timeline.heard:
        if segment.tone <= 0 or segment.end <= called_at:
            continue
        if segment.start >= until:
            break
        longest = max(longest, segment.start - last_end)
        last_end = max(last_end, segment.end)
    return 1000 * max(longest, until - last_end)


def _transfer_checks(result: ScenarioResult) -> list[Check]:
    """A transfer asked for: the handoff played out, then Twilio dialled the number the
    call's agent has for the target. One the caller interrupted: no dial, the model told."""
    expect = result.scenario.expect
    timeline, call = result.timeline, result.call
    recorded = call.transfer_target if call is not None else None
    target = expect.transferred_to
    if target is None:
        transfers = {key for key, (name, _) in result.calls_made().items() if name == TRANSFER_TOOL}
        if not transfers and timeline.dialed is None:
            return []
        told = [
            json.loads(output.output)
            for output in result.function_call_outputs()
            if output.call_id in transfers
        ]
        return [
            Check(
                "not transferred",
                timeline.dialed is None and not recorded,
                f"Twilio dialled {timeline.dialed or 'nothing'}, transfer target {recorded!r}",
            ),
            Check(
                "the model told the transfer did not happen",
                bool(told) and all(each.get("transferred") is False for each in told),
                f"told {told or 'nothing'}",
            ),
        ]
    targets = (call.agent.get("transfer_targets") or {}) if call is not None else {}
    number = targets.get(target)
    echo, dialed_at = timeline.last_echo_at, timeline.dialed_at
    gap_ms = (dialed_at - echo) * 1000 if echo is not None and dialed_at is not None else None
    drains = result.logs_of(RecordKind.DRAIN_COMPLETED)
    echoed = bool(drains) and drains[0].details.get("final_mark_echoed") is True
    return [
        Check(
            f"Twilio dials {target}",
            number is not None and timeline.dialed == number and recorded == target,
            f"<Dial>{timeline.dialed}</Dial>, the agent's {target} is {number}, "
            f"the call's transfer target {recorded!r}",
        ),
        Check(
            f"dialled within {TRANSFER_WITHIN_MS} ms of the final mark's echo",
            gap_ms is not None and 0 <= gap_ms <= TRANSFER_WITHIN_MS,
            "no echo, or no dial" if gap_ms is None else f"{gap_ms:.0f} ms after it",
        ),
        Check(
            "the handoff drained to its final mark",
            echoed,
            f"{len(drains)} drain(s), final mark echoed: {echoed}",
        ),
    ]


# The most of an answer a sound that is not an interruption may keep from the caller.
WHOLE_SHARE = 0.98
WHOLE_GAP_MS = 200


def _turn_checks(result: ScenarioResult) -> list[Check]:
    """The verdicts on the caller's sounds, an answer they must not cut, and how soon a
    real interruption stops the AI (by what the caller heard, from the answer's own
    position marks)."""
    expect = result.scenario.expect
    timeline = result.timeline
    checks = []
    if expect.verdicts is not None:
        verdicts = tuple(row.details.get("verdict") for row in result.logs_of("turn_verdict"))
        checks.append(Check("the caller's sounds judged", verdicts == expect.verdicts,
                            f"{', '.join(map(str, verdicts)) or 'none'}, expected "
                            f"{', '.join(expect.verdicts) or 'none'}"))  # fmt: skip
    if expect.heard_whole is not None:
        tone = expect.heard_whole
        heard = timeline.answer_heard(tone, min_gap_ms=1)
        wanted = result.scenario.reply_ms(tone)
        checks.append(
            Check(
                f"response {tone} heard whole, in order",
                heard.heard_ms >= WHOLE_SHARE * wanted and heard.in_order,
                f"{heard.heard_ms:.0f} of {wanted} ms, in order: {heard.in_order}",
            )
        )
        checks.append(
            Check(
                f"at most {WHOLE_GAP_MS} ms of gap in it",
                heard.gap_total_ms <= WHOLE_GAP_MS,
                f"{heard.gap_total_ms:.0f} ms in {len(heard.gaps_ms)} gap(s)",
            )
        )
        truncates = result.model_received("conversation.item.truncate")
        checks.append(Check("not truncated", not truncates, f"{len(truncates)} truncate(s)"))
        later = timeline.heard_ms_by_tone().get(tone + 1, 0.0)
        checks.append(Check("the caller's sounds not answered", later == 0,
                            f"{later:.0f} ms of a response after it"))  # fmt: skip
    if expect.stopped_within_ms is not None and expect.interrupted_tone is not None:
        heard = timeline.answer_heard(expect.interrupted_tone, min_gap_ms=1)
        onsets = [s.started_at for s in timeline.sounds if heard.first_heard_at is not None
                  and s.started_at > heard.first_heard_at]  # fmt: skip
        stopped = (
            None
            if not onsets or heard.last_heard_at is None
            else (heard.last_heard_at - onsets[0]) * 1000
        )
        checks.append(Check(f"the AI stopped within {expect.stopped_within_ms} ms",
                            stopped is not None and stopped <= expect.stopped_within_ms,
                            "never heard" if stopped is None else
                            f"last heard {stopped:.0f} ms after the caller began"))  # fmt: skip
    return checks


def _truncate_rejected_checks(result: ScenarioResult) -> list[Check]:
    """A refused truncate ends as the scenario says, in the record and in the model's memory."""
    expect = result.scenario.expect
    wanted = expect.truncate_rejected
    refused = result.logs_of("truncate_rejected")
    actions = [row.details.get("action") for row in refused]
    if wanted is None:
        return [Check("no truncate refused", not actions, f"{len(actions)} refused")]
    checks = [Check(f"refused truncate {wanted}", actions[-1:] == [wanted],
                    f"actions recorded: {actions}")]  # fmt: skip
    if expect.truncate_code is not None:
        code = expect.truncate_code
        codes = [row.details.get("code") for row in refused]
        checks.append(Check(f"refused as {code}", codes[:1] == [code], f"codes recorded: {codes}"))
    session = result.session
    if session is not None and result.barge_ins:
        item_id = result.barge_ins[0].item_id
        conversation = session.conversation
        if wanted == "deleted":
            ok, detail = item_id in conversation.deleted, f"{item_id} deleted: "
            detail += str(ok)
        else:
            item = conversation.items.get(item_id)
            truncated = item.truncated_at_ms if item is not None else None
            held = None if item is None else item.audio_ms - conversation.held_short_ms
            ok = truncated is not None and truncated == held
            detail = f"{item_id} truncated at {truncated} ms, the model held {held} ms"
        checks.append(Check("the model's memory holds only what was heard", ok, detail))
    return checks


def _unheard_deleted_checks(result: ScenarioResult) -> list[Check]:
    """Audio items the caller never heard are gone from the model's memory as well."""
    checks = []
    session = result.session
    expect = result.scenario.expect
    for tone in expect.unheard_deleted:
        heard = result.timeline.heard_ms_by_tone().get(tone, 0.0)
        item_ids = [
            item.id
            for response in (session.responses if session is not None else [])
            for item in response.items
            if item.tone == tone
        ]
        deleted = session is not None and bool(item_ids)
        deleted = deleted and all(i in session.conversation.deleted for i in item_ids)
        detail = f"heard {heard:.0f} ms; items {item_ids} deleted: {deleted}"
        checks.append(
            Check(f"item of tone {tone} never heard, deleted", heard == 0 and deleted, detail)
        )
        if expect.unheard_deleted_at is not None:
            at = _deleted_at(result, item_ids)
            checks.append(
                Check(
                    f"deleted at the {expect.unheard_deleted_at.replace('_', ' ')}",
                    at == expect.unheard_deleted_at,
                    f"deleted at: {at or 'neither'}",
                )
            )
    return checks


def _deleted_at(result: ScenarioResult, item_ids: list[str]) -> str | None:
    """Which record deleted the items: the barge-in's (their audio had come) or the
    cut answer's end (`unheard_deleted`: none of it had)."""
    wanted = set(item_ids)
    for row in result.logs_of(RecordKind.BARGE_IN):
        items = row.details.get("items") or []
        if wanted <= {i.get("item_id") for i in items if i.get("outcome") == "deleted"}:
            return "barge_in"
    for row in result.logs_of(RecordKind.UNHEARD_DELETED):
        if wanted <= set(row.details.get("item_ids") or []):
            return "response_done"
    return None


def _barge_in_checks(result: ScenarioResult) -> list[Check]:
    expect = result.scenario.expect
    if not expect.barge_ins or len(result.barge_ins) != expect.barge_ins:
        return []
    timeline = result.timeline
    event = result.barge_ins[0]
    tone = expect.interrupted_tone
    # One clear; or two, when a pause cleared Twilio while the caller's sound was judged
    # (that clear stopped what they heard; the barge-in's finds Twilio empty). A pause
    # the hold made (the answer ran out at the stop target) clears nothing.
    paused = result.logs_of("answer_paused")
    cleared = sum(1 for pause in paused if pause.details.get("cleared", True))
    checks = [
        Check(
            "Twilio buffer cleared",
            len(timeline.clears) == 1 + cleared,
            f"{len(timeline.clears)} clear(s), the answer paused {len(paused)} time(s), "
            f"{cleared} by a clear",
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
            f"truncated to what was heard (±{result.heard_tolerance_ms:.0f} ms)",
            end_ms is not None and abs(end_ms - heard) <= result.heard_tolerance_ms
            and event.audio_end_ms == end_ms,
            f"audio_end_ms={end_ms}, caller heard {heard:.0f} ms",
        ))  # fmt: skip
        checks.append(_heard_words_check(result, event, tone, heard))
    cancels = len(result.model_received("response.cancel"))
    if expect.model_still_generating is not None:
        checks.append(Check("response.cancel only while generating",
                            (cancels > 0) == expect.model_still_generating,
                            f"{cancels} response.cancel sent"))  # fmt: skip
    checks.append(Check("barge-in while audio still playing", event.playout_remaining_ms > 0,
                        f"playout_remaining_ms={event.playout_remaining_ms}"))  # fmt: skip
    return checks


def _heard_words_check(
    result: ScenarioResult, event: BargeInEvent, tone: int, heard_ms: float
) -> Check:
    """The recorded heard/cut words: the answer (as far as it was generated) split where
    the caller was cut off.

    The stand-in spreads an answer's words evenly over its audio, so up to the
    truncation the answer had begun ceil(words x audio_end / length) of them; the
    bridge places words by the audio delta they came with, so one word either way
    is exact enough. (Where the truncation lies against what the caller heard is
    the truncation's own check, with the link's tolerance: over a jittery link
    words of 50 ms are within it.)
    """
    reply, number = result.scenario.part(tone)
    # The items of the answer before the one cut were heard whole: their words come
    # first; the words cut are the rest of its own, then those of the items after it.
    before = [word for each in reply.parts[: number - 1] for word in each.transcript.split()]
    part = reply.parts[number - 1]
    words = [word for each in reply.parts for word in each.transcript.split()]
    heard_words, cut_words = event.heard_text.split(), event.cut_text.split()
    cut_at_ms = heard_ms if event.audio_end_ms is None else event.audio_end_ms
    begun = len(before) + math.ceil(len(part.transcript.split()) * cut_at_ms / part.audio_ms)
    said = heard_words + cut_words
    ok = bool(said) and said == words[: len(said)] and abs(len(heard_words) - begun) <= 1
    return Check(
        "heard and cut words",
        ok,
        f"heard {len(heard_words)} word(s) ({event.heard_text!r}), cut {len(cut_words)}, "
        f"the answer had begun {begun} of {len(words)} where it was truncated",
    )


def _goodbye_checks(result: ScenarioResult, tone: int) -> list[Check]:
    timeline = result.timeline
    last = timeline.last_heard(tone)
    closed = timeline.closed_at
    if last is None or closed is None:
        return [Check("hangup right after the goodbye", False, "goodbye not heard or call open")]
    gap_ms = (closed - last) * 1000
    drains = result.logs_of("drain_completed")
    echoed = bool(drains) and drains[0].details.get("final_mark_echoed") is True
    if FindingRule.DRAIN_BEFORE_FINAL_MARK in result.scenario.expect.flagged:
        # Twilio lost the final mark: the drain waits out its deadline past the
        # estimated end instead, and ends the call unconfirmed.
        cut = drains[0].details.get("cut_off_ms") if drains else None
        return [
            Check(f"hangup on the drain's deadline, within {LOST_MARK_HANGUP_WITHIN_MS} ms "
                  "of the goodbye's end", 0 <= gap_ms <= LOST_MARK_HANGUP_WITHIN_MS,
                  f"closed {gap_ms:.0f} ms after the last audio"),
            Check("drain ended without the final mark", bool(drains) and not echoed,
                  f"{len(drains)} drain(s), final mark echoed: {echoed}, cut off: {cut} ms"),
        ]  # fmt: skip
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
        what = "held for their sound" if held_for_a_sound(result, gap) else "UNDERRUN"
        lines.append(
            (gap.at - t0, "caller", f"{what}: {gap.gap_ms:.0f} ms gap in response {gap.tone}")
        )
    for press in timeline.dtmf:
        lines.append((press.at - t0, "caller", f"presses {press.digit}"))
    dialed_at, echo = timeline.dialed_at, timeline.last_echo_at
    if timeline.dialed is not None and dialed_at is not None:
        dial = f"<Dial>{timeline.dialed}</Dial>: the caller is transferred"
        if echo is not None:
            dial += f", {(dialed_at - echo) * 1000:.0f} ms after the last mark echo"
        lines.append((dialed_at - t0, "twilio", dial))
    call = result.call
    if call is not None and call.agent_name not in ("", "default"):
        source = call.agent.get("source")
        lines.append((0.0, "bridge", f"agent {call.agent_name!r}, chosen by the host ({source})"))
    for row in result.logs:
        text = _describe_row(row)
        if text:
            lines.append((row.offset_ms / 1000, "bridge", text))
    if timeline.closed_at is not None:
        lines.append((timeline.closed_at - t0, timeline.closed_by or "?", "call closed"))
        for words in timeline.said:
            lines.append((timeline.closed_at - t0, "twilio", f'says to the caller: "{words}"'))
    if call is not None and timeline.closed_at is not None:
        lines.append((
            timeline.closed_at - t0,
            "bridge",
            f"link measured: round trip p50 {call.link_rtt_p50_ms} ms / p95 "
            f"{call.link_rtt_p95_ms} ms, jitter {call.link_jitter_ms} ms over "
            f"{call.link_samples} sample(s); estimate |error| p95 {call.estimate_error_p95_ms} ms",
        ))  # fmt: skip
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
    if row.kind == "model_fault":
        return (
            f"MODEL FAULT ({d.get('what')}), fault {d.get('attempt')} of the call, "
            f"answer owed: {d.get('answer_owed')}"
        )
    if row.kind == "model_recovered":
        return (
            f"model session replaced in {d.get('connect_ms')} ms, told {d.get('turns')} "
            f"turn(s), answer requested: {d.get('answer_requested')}"
        )
    if row.kind == RecordKind.TOOL_CALL:
        error = f" ({d.get('error')})" if d.get("error") else ""
        return (
            f"tool {d.get('name')}({d.get('arguments')}) returned {d.get('outcome')}{error} "
            f"after {d.get('duration_ms')} ms; answer asked: {d.get('answer_asked')}"
        )
    if row.kind == RecordKind.TOOL_HOLD:
        return f"holding line asked: {d.get('silent_ms')} ms of silence while a tool runs"
    if row.kind == RecordKind.TRANSFER_REQUESTED:
        return f"transfer to {d.get('target')} ({d.get('number')}) asked: the handoff plays out"
    if row.kind == RecordKind.KEYPAD_INPUT:
        return f"keypad entry {d.get('digits')} told to the model"
    if row.kind in {"end_call_requested", "hangup_cancelled", "model_error", "stream_ended"}:
        return f"{row.get_kind_display().lower()}: " + ", ".join(f"{k}={v}" for k, v in d.items())
    return ""
