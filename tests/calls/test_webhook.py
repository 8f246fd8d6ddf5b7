"""The voice webhook and the status callback, through Django's test client."""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from django.db import IntegrityError
from django.test import Client

from callcore.records import CallState
from calls.conf import callbridge_settings
from calls.frontdoor.tokens import verify_stream_token
from calls.models import CallSession
from calls.views import _answer
from tests.callbridge import configure
from tests.conftest import TEST_PUBLIC_BASE_URL, twilio_signature

# The views do their database work on threads of their own: real transactions.
pytestmark = pytest.mark.django_db(transaction=True)

CALL_SID = "CA" + "1" * 32
VOICE_PARAMS = {
    "CallSid": CALL_SID,
    "AccountSid": "AC" + "2" * 32,
    "From": "+15550001111",
    "To": "+15550002222",
    "CallStatus": "ringing",
    "Direction": "inbound",
}


def post_signed(client: Client, path: str, params: dict[str, str], signature: str | None = None):
    sig = twilio_signature(TEST_PUBLIC_BASE_URL + path, params) if signature is None else signature
    return client.post(path, params, HTTP_X_TWILIO_SIGNATURE=sig)


def test_valid_webhook_answers_connect_stream_with_token(client: Client) -> None:
    response = post_signed(client, "/twilio/voice/", VOICE_PARAMS)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/xml")
    root = ET.fromstring(response.content)
    stream = root.find("./Connect/Stream")
    assert stream is not None
    assert stream.get("url") == "wss://calls.example.test/twilio/media-stream/"
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert verify_stream_token(params["token"], CALL_SID, time.time()) is None
    call = CallSession.objects.get()
    assert (call.call_sid, call.from_number, call.to_number, call.direction) == (
        CALL_SID,
        "+15550001111",
        "+15550002222",
        "inbound",
    )
    assert call.status == CallState.RINGING


@pytest.mark.parametrize("signature", ["", "forged0000signature0000000000="])
def test_missing_or_forged_signature_is_refused_and_records_nothing(
    client: Client, signature: str
) -> None:
    response = post_signed(client, "/twilio/voice/", VOICE_PARAMS, signature=signature)

    assert response.status_code == 403
    assert not CallSession.objects.exists()


def test_signature_over_other_params_is_refused(client: Client) -> None:
    signature = twilio_signature(
        TEST_PUBLIC_BASE_URL + "/twilio/voice/", {**VOICE_PARAMS, "From": "+15559999999"}
    )
    response = post_signed(client, "/twilio/voice/", VOICE_PARAMS, signature=signature)

    assert response.status_code == 403
    assert not CallSession.objects.exists()


def test_signature_must_be_over_public_url_not_local_host(client: Client) -> None:
    signature = twilio_signature("http://testserver/twilio/voice/", VOICE_PARAMS)
    response = post_signed(client, "/twilio/voice/", VOICE_PARAMS, signature=signature)

    assert response.status_code == 403


def test_retry_of_same_call_sid_reuses_the_row(client: Client) -> None:
    first = post_signed(client, "/twilio/voice/", VOICE_PARAMS)
    second = post_signed(client, "/twilio/voice/", VOICE_PARAMS)

    assert first.status_code == second.status_code == 200
    assert CallSession.objects.count() == 1


def test_a_row_the_database_refuses_is_not_taken_for_a_retry() -> None:
    with pytest.raises(IntegrityError):
        _answer("CA" + "6" * 32, {"from_number": None})  # type: ignore[dict-item]

    assert not CallSession.objects.exists()


def test_missing_call_sid_is_bad_request(client: Client) -> None:
    params = {k: v for k, v in VOICE_PARAMS.items() if k != "CallSid"}
    response = post_signed(client, "/twilio/voice/", params)

    assert response.status_code == 400
    assert not CallSession.objects.exists()


def test_get_is_not_allowed(client: Client) -> None:
    assert client.get("/twilio/voice/").status_code == 405


def test_the_connect_action_is_our_stream_ended_url(client: Client) -> None:
    response = post_signed(client, "/twilio/voice/", VOICE_PARAMS)
    connect = ET.fromstring(response.content).find("./Connect")
    assert connect is not None
    assert connect.get("action") == "https://calls.example.test/twilio/stream-ended/"


@pytest.mark.parametrize(
    ("end_reason", "apology"),
    [
        ("model_unresponsive", True),
        ("model_connect_failed", True),
        ("internal_error", True),
        ("", True),  # not written yet: never silence
        ("agent_hangup", False),
        ("operator_hangup", False),
    ],
)
def test_a_stream_that_ended_under_the_caller_is_an_apology_then_a_hangup(
    client: Client, end_reason: str, apology: bool
) -> None:
    post_signed(client, "/twilio/voice/", VOICE_PARAMS)
    CallSession.objects.update(end_reason=end_reason)

    response = post_signed(
        client, "/twilio/stream-ended/", {**VOICE_PARAMS, "CallStatus": "in-progress"}
    )

    assert response.status_code == 200
    verbs = [(verb.tag, (verb.text or "").strip()) for verb in ET.fromstring(response.content)]
    if apology:
        assert verbs == [("Say", callbridge_settings().CALL_APOLOGY), ("Hangup", "")]
    else:
        assert verbs == [("Hangup", "")]


def test_a_stream_ended_by_a_shutdown_is_handed_over_to_a_new_stream(client: Client) -> None:
    post_signed(client, "/twilio/voice/", VOICE_PARAMS)
    CallSession.objects.update(end_reason="server_shutdown", status=CallState.COMPLETED)

    response = post_signed(
        client, "/twilio/stream-ended/", {**VOICE_PARAMS, "CallStatus": "in-progress"}
    )

    root = ET.fromstring(response.content)
    connect = root.find("./Connect")
    stream = root.find("./Connect/Stream")
    assert connect is not None
    assert stream is not None
    assert connect.get("action") == "https://calls.example.test/twilio/stream-ended/"
    assert stream.get("url") == "wss://calls.example.test/twilio/media-stream/"
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert verify_stream_token(params["token"], CALL_SID, time.time()) is None
    assert root.find("./Say") is None


def test_stream_ended_forged_is_refused(client: Client) -> None:
    response = post_signed(client, "/twilio/stream-ended/", VOICE_PARAMS, signature="forged")
    assert response.status_code == 403


def test_status_callback_records_final_status_and_end(client: Client) -> None:
    post_signed(client, "/twilio/voice/", VOICE_PARAMS)
    params = {"CallSid": CALL_SID, "CallStatus": "completed", "CallDuration": "12"}

    response = post_signed(client, "/twilio/status/", params)

    assert response.status_code == 204
    call = CallSession.objects.get()
    assert call.status == CallState.COMPLETED
    assert call.ended_at is not None
    assert call.end_reason == "twilio_completed"


def test_status_callback_keeps_an_end_reason_already_recorded(client: Client) -> None:
    post_signed(client, "/twilio/voice/", VOICE_PARAMS)
    CallSession.objects.update(end_reason="agent_hangup")

    post_signed(client, "/twilio/status/", {"CallSid": CALL_SID, "CallStatus": "completed"})

    assert CallSession.objects.get().end_reason == "agent_hangup"


def test_status_callback_forged_is_refused(client: Client) -> None:
    post_signed(client, "/twilio/voice/", VOICE_PARAMS)
    params = {"CallSid": CALL_SID, "CallStatus": "completed"}

    response = post_signed(client, "/twilio/status/", params, signature="nope")

    assert response.status_code == 403
    assert CallSession.objects.get().status == CallState.RINGING


def test_status_callback_for_unknown_call_creates_nothing(client: Client) -> None:
    response = post_signed(client, "/twilio/status/", {"CallSid": CALL_SID, "CallStatus": "failed"})

    assert response.status_code == 404
    assert not CallSession.objects.exists()


def test_a_late_callback_never_moves_the_status_back(client: Client) -> None:
    post_signed(client, "/twilio/voice/", VOICE_PARAMS)
    post_signed(client, "/twilio/status/", {"CallSid": CALL_SID, "CallStatus": "completed"})

    late = post_signed(client, "/twilio/status/", {"CallSid": CALL_SID, "CallStatus": "ringing"})
    failed = post_signed(client, "/twilio/status/", {"CallSid": CALL_SID, "CallStatus": "failed"})

    assert (late.status_code, failed.status_code) == (204, 204)
    call = CallSession.objects.get()
    assert call.status == CallState.COMPLETED


async def test_the_asgi_front_door_answers_webhooks_without_the_site_middleware() -> None:
    """`config.asgi` routes /twilio/ to a handler with no middleware: signed, still answered."""
    from urllib.parse import urlencode

    from channels.testing import HttpCommunicator

    from config.asgi import application

    body = urlencode(VOICE_PARAMS).encode()
    signature = twilio_signature(TEST_PUBLIC_BASE_URL + "/twilio/voice/", VOICE_PARAMS)
    headers = [
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"x-twilio-signature", signature.encode()),
        (b"host", b"calls.example.test"),
    ]
    answered = await HttpCommunicator(
        application, "POST", "/twilio/voice/", body, headers
    ).get_response()
    forged = await HttpCommunicator(
        application, "POST", "/twilio/voice/", body, [*headers[:1], (b"x-twilio-signature", b"x")]
    ).get_response()

    assert answered["status"] == 200
    assert (
        b'<Connect action="https://calls.example.test/twilio/stream-ended/"><Stream'
        in answered["body"]
    )
    # No session or CSRF cookie: none of the browser middleware ran.
    assert not any(name.lower() == b"set-cookie" for name, _ in answered["headers"])
    assert forged["status"] == 403


async def test_the_front_door_does_its_sync_work_on_one_kept_thread() -> None:
    """Django's handler would start (and join) a thread per request: twice per incoming
    call, in the burst in which calls are set up. The front door keeps one."""
    from urllib.parse import urlencode

    from channels.testing import HttpCommunicator
    from django.core.signals import request_started

    from config.asgi import application

    threads: list[str] = []

    def note_thread(**kwargs: object) -> None:
        threads.append(threading.current_thread().name)

    request_started.connect(note_thread)
    try:
        for call in ("CA" + "3" * 32, "CA" + "4" * 32):
            params = {**VOICE_PARAMS, "CallSid": call}
            signature = twilio_signature(TEST_PUBLIC_BASE_URL + "/twilio/status/", params)
            headers = [
                (b"content-type", b"application/x-www-form-urlencoded"),
                (b"x-twilio-signature", signature.encode()),
            ]
            answered = await HttpCommunicator(
                application, "POST", "/twilio/status/", urlencode(params).encode(), headers
            ).get_response()
            assert answered["status"] == 404  # no such call: the view ran all the same
    finally:
        request_started.disconnect(note_thread)

    assert len(threads) == 2
    assert threads[0] == threads[1]
    assert threads[0].startswith("front-door")


@pytest.mark.parametrize(("overflow", "verb"), [("", "Reject"), ("+15550009999", "Dial/Number")])
def test_a_process_whose_loop_runs_late_turns_the_call_away_and_records_nothing(
    client: Client, call_process: Any, settings: Any, overflow: str, verb: str, caplog: Any
) -> None:
    configure(settings, OVERFLOW_NUMBER=overflow)
    now = time.monotonic()
    call_process.load.lag.woke(now - 0.2, now)  # the loop just woke 200 ms late

    response = post_signed(client, "/twilio/voice/", VOICE_PARAMS)

    assert response.status_code == 200
    root = ET.fromstring(response.content)
    found = root.find(f"./{verb}")
    assert found is not None
    if overflow:
        assert found.text == overflow
    else:
        assert found.get("reason") == "busy"
    assert root.find("./Connect") is None
    assert not CallSession.objects.exists()
    assert "new call turned away" in caplog.text
    assert "event loop 200 ms late (limit 100 ms)" in caplog.text


def test_a_call_taken_counts_once_before_its_stream_and_a_retry_adds_nothing(
    client: Client, call_process: Any
) -> None:
    post_signed(client, "/twilio/voice/", VOICE_PARAMS)
    post_signed(client, "/twilio/voice/", VOICE_PARAMS)  # Twilio retried the webhook
    assert call_process.load.expected() == 1
