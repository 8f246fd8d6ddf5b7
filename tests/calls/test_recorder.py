"""The call recorder: batched writes that never lose what was recorded."""

from __future__ import annotations

import asyncio
import time

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from calls.models import BargeInEvent, CallSession, PlayoutLog
from calls.recorder import CallRecorder

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def kinds(call_pk: int) -> list[str]:
    return list(PlayoutLog.objects.filter(call_id=call_pk).values_list("kind", flat=True))


@database_sync_to_async
def new_call(sid: str = "CA" + "4" * 32) -> CallSession:
    return CallSession.objects.create(call_sid=sid)


def recorder_for(pk: int) -> CallRecorder:
    return CallRecorder(pk, timezone.now(), time.monotonic(), flush_interval_s=0.01)


async def test_rows_get_offsets_and_wall_times_from_one_anchor() -> None:
    call = await new_call()
    recorder = CallRecorder(call.pk, timezone.now(), 100.0)

    recorder.log("barge_in", 101.25, "playout_active_4300ms", item_id="i1")
    recorder.barge_in(101.25, playout_remaining_ms=4300, reaction_ms=0.2)
    recorder.update_call(end_reason="caller_hangup")
    assert await recorder.flush()

    log = await database_sync_to_async(PlayoutLog.objects.get)(call_id=call.pk)
    event = await database_sync_to_async(BargeInEvent.objects.get)(call_id=call.pk)
    assert (log.offset_ms, event.offset_ms) == (1250, 1250)
    assert log.occurred_at == event.occurred_at
    assert log.details == {"item_id": "i1"}
    assert (await database_sync_to_async(CallSession.objects.get)(pk=call.pk)).end_reason == (
        "caller_hangup"
    )


async def test_a_flush_cancelled_mid_write_loses_nothing() -> None:
    call = await new_call()
    recorder = recorder_for(call.pk)
    recorder.log("response_started", time.monotonic())
    recorder.log("barge_in", time.monotonic())

    flushing = asyncio.create_task(recorder.flush())
    await asyncio.sleep(0)  # let the write start
    flushing.cancel()
    recorder.log("stream_ended", time.monotonic())
    await recorder.close()

    assert sorted(await kinds(call.pk)) == ["barge_in", "response_started", "stream_ended"]


async def test_background_writer_and_close_write_everything_once() -> None:
    call = await new_call()
    recorder = recorder_for(call.pk)
    recorder.start()
    for i in range(50):
        recorder.log("dtmf", time.monotonic(), digit=str(i % 10))
        if i % 10 == 0:
            await asyncio.sleep(0)
    await recorder.close()

    assert len(await kinds(call.pk)) == 50
    assert recorder.rows_written == 50
    assert recorder.pending_rows == 0


async def test_a_failed_write_keeps_its_rows_for_the_next_attempt() -> None:
    recorder = recorder_for(999_999)  # no such call yet: the foreign key fails
    recorder.log("stream_started", time.monotonic())

    assert await recorder.flush() is False
    assert recorder.pending_rows == 1

    await database_sync_to_async(CallSession.objects.create)(pk=999_999, call_sid="CA-later")
    assert await recorder.flush() is True
    assert await kinds(999_999) == ["stream_started"]
