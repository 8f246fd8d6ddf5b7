"""Review fixtures: calls with the playout-log rows the media-stream bridge writes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from callcore.records import CallState, RecordKind
from calls.models import BargeInEvent, CallSession, PlayoutLog
from calls.review.stored import review_calls

GOODBYE_SID = "CA" + "a" * 32


class CallBuilder:
    """Writes one call's rows the way the bridge does: a log row per event, offsets in ms."""

    def __init__(self, call: CallSession) -> None:
        self.call = call
        self.rows: list[PlayoutLog] = []

    def log(self, kind: str, offset_ms: int, status: str = "", **details: Any) -> CallBuilder:
        base = self.call.stream_started_at or self.call.started_at
        self.rows.append(
            PlayoutLog(
                call=self.call,
                kind=kind,
                occurred_at=base + timedelta(milliseconds=offset_ms),
                offset_ms=offset_ms,
                playout_status=status,
                details=details,
            )
        )
        return self

    def playout(self, response_id: str, start_ms: int, end_ms: int) -> CallBuilder:
        self.log(RecordKind.RESPONSE_STARTED, start_ms - 100, response_id=response_id)
        self.log(RecordKind.PLAYOUT_STARTED, start_ms, response_id=response_id, item_id="it")
        return self.log(
            RecordKind.PLAYOUT_ENDED,
            end_ms,
            response_id=response_id,
            audio_end_offset_ms=end_ms,
            audio_ms=end_ms - start_ms,
        )

    def barge_in(self, offset_ms: int, remaining_ms: int, reaction_ms: float = 0.4) -> CallBuilder:
        figures = {
            "playout_remaining_ms": remaining_ms,
            "audio_end_ms": 3000,
            "reaction_ms": reaction_ms,
            "pending_ms": 1200,
            "unplayed_ms": remaining_ms - 1200,
            "response_cancelled": True,
            "speech_onset_offset_ms": offset_ms - 200,
            "heard_at_onset_ms": 2800,
            "heard_text": "Your order ships on",
            "cut_text": "Monday by express courier.",
        }
        BargeInEvent.objects.create(
            call=self.call,
            occurred_at=timezone.now(),
            offset_ms=offset_ms,
            response_id="resp_1",
            item_id="item_1",
            **figures,
        )
        return self.log(
            RecordKind.BARGE_IN,
            offset_ms,
            f"playout_active_{remaining_ms}ms",
            response_id="resp_1",
            item_id="item_1",
            deleted_item_ids=[],
            **figures,
        )

    def ai_silent(self, offset_ms: int, ms_since_end: int | None) -> CallBuilder:
        status = "no_playout_ts" if ms_since_end is None else f"playout_ended_{ms_since_end}ms_ago"
        return self.log(
            RecordKind.USER_SPEECH_AI_SILENT,
            offset_ms,
            status,
            ms_since_playout_end=ms_since_end,
            pending_frames=0,
        )

    def drain(self, start_ms: int, actual_ms: int, echoed: bool, cut_off_ms: int) -> CallBuilder:
        self.log(RecordKind.DRAIN_STARTED, start_ms, expected_wait_ms=1500, pending_ms=900)
        return self.log(
            RecordKind.DRAIN_COMPLETED,
            start_ms + actual_ms,
            expected_wait_ms=1500,
            actual_wait_ms=actual_ms,
            final_mark_echoed=echoed,
            cut_off_ms=cut_off_ms,
        )

    def verdict(
        self,
        offset_ms: int,
        verdict: str,
        decided_by: str,
        decision_ms: int,
        *,
        voice_ms: int = 360,
        words: str = "",
        paused: bool = False,
        interruptible: bool = True,
        **details: Any,
    ) -> CallBuilder:
        """A caller's sound judged at `offset_ms`, `decision_ms` after it began."""
        figures: dict[str, Any] = {
            "verdict": verdict,
            "decided_by": decided_by,
            "decision_ms": decision_ms,
            "speech_onset_offset_ms": offset_ms - decision_ms,
            "item_ids": ["item_user_1"],
            "voice_ms": voice_ms,
            "sounds": 1,
            "voice_frames": voice_ms // 20,
            "echo_frames": 0,
            "words": words,
            "paused": paused,
            "interruptible": interruptible,
        }
        return self.log(
            RecordKind.TURN_VERDICT, offset_ms, "playout_active_900ms", **figures | details
        )

    def pause(self, offset_ms: int, heard_ms: int, requeued_ms: int = 900) -> CallBuilder:
        return self.log(
            RecordKind.ANSWER_PAUSED,
            offset_ms,
            item_id="item_1",
            heard_ms=heard_ms,
            requeued_ms=requeued_ms,
        )

    def resume(self, offset_ms: int, gap_ms: int | None) -> CallBuilder:
        return self.log(RecordKind.ANSWER_RESUMED, offset_ms, gap_ms=gap_ms)

    def save(self) -> CallSession:
        PlayoutLog.objects.bulk_create(self.rows)
        review_calls([self.call.pk])  # as the record writer does once a call's rows are in
        self.call.refresh_from_db()
        return self.call


def new_call(
    sid: str,
    *,
    status: str = CallState.COMPLETED,
    started_at: datetime | None = None,
    ended: bool = True,
) -> CallBuilder:
    started = started_at or timezone.now() - timedelta(minutes=5)
    call = CallSession.objects.create(
        call_sid=sid, status=status, from_number="+15550001111", to_number="+15550002222"
    )
    CallSession.objects.filter(pk=call.pk).update(
        started_at=started,
        stream_started_at=started + timedelta(seconds=1),
        ended_at=started + timedelta(seconds=20) if ended else None,
        end_reason="caller_goodbye" if ended else "",
        responses=3,
        ai_audio_ms=9100,
    )
    call.refresh_from_db()
    return CallBuilder(call)


def with_link(call: CallSession, rtt_p50: int, rtt_p95: int, jitter: int | None) -> CallSession:
    """The call's measured link to Twilio, as the bridge stores it at the end."""
    CallSession.objects.filter(pk=call.pk).update(
        link_rtt_p50_ms=rtt_p50,
        link_rtt_p95_ms=rtt_p95,
        link_jitter_ms=jitter,
        link_samples=6,
        estimate_error_p95_ms=25,
    )
    review_calls([call.pk])  # the figures come with the call's end, before its review
    call.refresh_from_db()
    return call


def goodbye_call(sid: str = GOODBYE_SID) -> CallSession:
    """A call with one real barge-in, one likely missed barge-in and a cut-off goodbye."""
    call = (
        new_call(sid)
        .log(RecordKind.STREAM_STARTED, 0)
        .playout("resp_1", 600, 4201)
        .barge_in(4200, remaining_ms=4300)
        .log(RecordKind.CANCELLED, 4202, response_id="resp_1")
        .log(RecordKind.SPEECH_STOPPED, 5600, audio_end_ms=5400)
        .log(RecordKind.RESPONSE_DONE, 5700, response_id="resp_1", status="cancelled")
        .playout("resp_2", 6000, 8900)
        .ai_silent(9000, ms_since_end=100)
        .log(RecordKind.SPEECH_STOPPED, 10200, audio_end_ms=10000)
        .log(
            RecordKind.MARK_STATS,
            10300,
            response_id="resp_2",
            count=3,
            estimate_error_ms=[10, -5, 30],
            round_trip_ms=[80, 90, 120],
        )
        .playout("resp_3", 10600, 13400)
        .log(RecordKind.END_CALL_REQUESTED, 12000, call_id="fc_1")
        .drain(12100, actual_ms=1500, echoed=False, cut_off_ms=300)
        .log(RecordKind.STREAM_ENDED, 13700, end_reason="hangup")
        .save()
    )
    return with_link(call, rtt_p50=120, rtt_p95=180, jitter=15)


SOUNDS_SID = "CA" + "s" * 32


def sounds_call(sid: str = SOUNDS_SID) -> CallSession:
    """The caller says "uh-huh" (the answer paused, then resumed after a 420 ms gap), coughs,
    the AI's voice comes back through a speakerphone, then the caller interrupts and hears
    the AI for 600 ms after they began."""
    return (
        new_call(sid)
        .log(RecordKind.STREAM_STARTED, 0)
        .playout("resp_1", 600, 6401)
        .pause(2000, heard_ms=1400)
        .verdict(2450, "backchannel", "backchannel_words", 1200, words="uh-huh", paused=True)
        .resume(2450, gap_ms=420)
        .verdict(4000, "noise", "not_speech", 300, voice_ms=120)
        .verdict(5000, "echo", "echo", 250, voice_ms=200, echo_frames=9)
        .pause(6100, heard_ms=5500)
        .verdict(
            6400,
            "interruption",
            "length",
            900,
            voice_ms=900,
            words="wait, stop",
            paused=True,
            stopped_hearing_ms=600,
        )
        .barge_in(6400, remaining_ms=2600)
        .log(RecordKind.SPEECH_STOPPED, 7500, audio_end_ms=7300)
        .log(RecordKind.STREAM_ENDED, 9500, end_reason="caller_hangup")
        .save()
    )


TRANSFER_SID = "CA" + "t" * 32
SALES_AGENT = {
    "name": "sales-desk",
    "instructions": "You answer for the sales desk.\nLook orders up before you answer; "
    "hand the caller to Sales when they ask for a person. " + "Be brief. " * 12,
    "voice": "marin",
    "greeting": "Sales desk, how can I help?",
    "tools": ["lookup_order", "check_stock"],
    "transfer_targets": {"Sales": "+15550003333", "Billing": "+15550004444"},
    "language": "en",
    "vad_threshold": 0.6,
    "silence_duration_ms": 500,
    "prefix_padding_ms": 300,
    "source": "hook",
}


def with_agent(
    builder: CallBuilder, agent: dict[str, Any] | None = None, **fields: Any
) -> CallBuilder:
    """The call answered by an agent (the voice webhook's record), with other columns set
    (a transferred call's `transfer_target` is the name of one of its agent's targets)."""
    agent = SALES_AGENT if agent is None else agent
    CallSession.objects.filter(pk=builder.call.pk).update(
        agent_name=agent.get("name", ""), agent=agent, **fields
    )
    return builder


def tool_call(
    builder: CallBuilder,
    name: str,
    started_ms: int,
    duration_ms: int,
    outcome: str = "ok",
    call_id: str = "fc_1",
    **details: Any,
) -> CallBuilder:
    """A tool call's row as the core writes it, once its outcome is known."""
    figures = {
        "call_id": call_id,
        "name": name,
        "arguments": {"order_id": "A-4521", "card": "[redacted]"},
        "outcome": outcome,
        "error": "",
        "duration_ms": duration_ms,
        "started_offset_ms": started_ms,
        "dispatch_ms": 0.8,
        "reply_ms": 1.3,
        "caller_spoke": False,
        "answer_asked": True,
    }
    return builder.log(RecordKind.TOOL_CALL, started_ms + duration_ms + 2, **figures | details)


def transfer_call(sid: str = TRANSFER_SID) -> CallSession:
    """The sales agent looks an order up (a holding line meanwhile), fails a stock check,
    takes keypad digits, and hands the caller to Sales: Twilio dials once the stream ends."""
    builder = with_agent(new_call(sid), end_reason="transferred", transfer_target="Sales")
    builder.log(RecordKind.STREAM_STARTED, 0).playout("resp_1", 600, 2000)
    for n, digit in enumerate("4521#"):
        builder.log(RecordKind.DTMF, 2400 + 150 * n, digit=digit)
    builder.log(RecordKind.KEYPAD_INPUT, 3100, digits="4521#")
    tool_call(builder, "lookup_order", 4200, 1150)
    builder.log(RecordKind.TOOL_HOLD, 5200, call_ids=["fc_1"], silent_ms=1000, holds=1)
    builder.playout("resp_2", 5600, 8000)
    tool_call(
        builder,
        "check_stock",
        8200,
        400,
        outcome="error",
        call_id="fc_2",
        arguments={"sku": "X-1"},
        error="stock service unavailable",
        caller_spoke=True,
    )
    builder.log(
        RecordKind.TRANSFER_REQUESTED, 9500, call_id="fc_3", target="Sales", number="+15550003333"
    )
    builder.playout("resp_3", 9600, 11000)
    builder.log(
        RecordKind.DRAIN_STARTED, 10000, expected_wait_ms=1000, pending_ms=900,
        end_reason="transferred",
    )  # fmt: skip
    builder.log(
        RecordKind.DRAIN_COMPLETED, 11100, expected_wait_ms=1000, actual_wait_ms=1100,
        final_mark_echoed=True, cut_off_ms=0,
    )  # fmt: skip
    builder.log(RecordKind.STREAM_ENDED, 11200, end_reason="transferred", transfer_target="Sales")
    return builder.save()


def transfer_cancelled_call(sid: str = "CA-transfer-cancelled") -> CallSession:
    """The AI began to hand the caller to Billing; the caller spoke over its goodbye."""
    builder = with_agent(new_call(sid), end_reason="caller_hangup")
    builder.log(RecordKind.STREAM_STARTED, 0).playout("resp_1", 600, 3000)
    builder.log(
        RecordKind.TRANSFER_REQUESTED, 2000, call_id="fc_9", target="Billing", number="+15550004444"
    )
    builder.log(
        RecordKind.DRAIN_STARTED, 2100, expected_wait_ms=900, pending_ms=900,
        end_reason="transferred",
    )  # fmt: skip
    builder.barge_in(2500, remaining_ms=1500)
    builder.log(RecordKind.HANGUP_CANCELLED, 2501, reason="barge_in", transfer_target="Billing")
    builder.log(RecordKind.SPEECH_STOPPED, 3600, audio_end_ms=3400)
    builder.log(RecordKind.STREAM_ENDED, 9000, end_reason="caller_hangup")
    return builder.save()


@pytest.fixture
def staff_client(client: Client) -> Client:
    user = User.objects.create_user("reviewer", password="pw-for-tests-only", is_staff=True)
    user.is_superuser = True
    user.save()
    client.force_login(user)
    return client
