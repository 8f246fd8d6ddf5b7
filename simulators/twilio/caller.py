"""`TwilioCaller`: one simulated phone call against the project's HTTP and WebSocket server."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import urllib.parse
from collections.abc import Callable
from typing import TypeVar

from simulators import signals
from simulators.link import Link, LinkProfile
from simulators.twilio import messages, webhook
from simulators.twilio.messages import StreamIds
from simulators.twilio.microphone import Microphone, Tick
from simulators.twilio.playback import Playback
from simulators.twilio.script import CallerScript, Hangup
from simulators.twilio.timeline import CallerSound, KeyPress, MarkRecord, Timeline
from simulators.waiting import DEFAULT_TIMEOUT_S, Notifier
from simulators.wsclient import WebSocketClient

logger = logging.getLogger(__name__)

T = TypeVar("T")

FRAME_S = 0.02
_CLOSE = None  # sent down the uplink after `stop`: the socket closes when it arrives


class TwilioCaller:
    """Behaves like Twilio Media Streams for one inbound call.

    `public_base_url` is what Twilio would call (and sign); requests really go to
    `local_base_url` (the media stream too, unless `local_stream_base_url` is given).
    The network between Twilio and the app is `uplink` (Twilio to the app) and
    `downlink` (the app to Twilio), each with its own delay and jitter;
    `latency_ms` sets both delays at once. `stream_connect_ms` is how long Twilio
    takes to open the media stream once it has the TwiML (its handshakes with the
    app over the internet). All times are `time.monotonic()`.
    """

    def __init__(
        self,
        *,
        public_base_url: str,
        local_base_url: str,
        auth_token: str,
        script: CallerScript | None = None,
        voice_path: str = "/twilio/voice/",
        status_path: str = "/twilio/status/",
        account_sid: str | None = None,
        call_sid: str | None = None,
        from_number: str = "+15005550006",
        to_number: str = "+15005550001",
        latency_ms: float = 0.0,
        uplink: LinkProfile | None = None,
        downlink: LinkProfile | None = None,
        link_seed: int = 0,
        underrun_threshold_ms: float = 1.0,
        local_stream_base_url: str | None = None,
        stream_connect_ms: float = 0.0,
    ) -> None:
        self.public_base_url = public_base_url
        self.local_base_url = local_base_url
        self.local_stream_base_url = local_stream_base_url or local_base_url
        # Twilio opens the media stream from its own media region, over the internet:
        # TCP, TLS and the upgrade before the first message (added here as one wait).
        self._stream_connect_s = stream_connect_ms / 1000
        self._auth_token = auth_token
        self.script = script or CallerScript()
        self._voice_path, self._status_path = voice_path, status_path
        self.ids = StreamIds(
            account_sid or messages.new_sid("AC"),
            call_sid or messages.new_sid("CA"),
            messages.new_sid("MZ"),
        )
        self.from_number, self.to_number = from_number, to_number
        rng = random.Random(link_seed)
        # Twilio's media clock starts at the stream's start, before its first frame
        # reaches the app (the first timestamps seen live were 102 and 155 ms), and
        # steps about 20 ms a frame, not exactly.
        self._clock_rng = random.Random(link_seed + 1)
        self._first_timestamp_ms = self._clock_rng.randint(100, 155)
        self._uplink: Link[str | None] = Link(
            uplink or LinkProfile(delay_ms=latency_ms), self._transmit, rng=rng
        )
        self._downlink: Link[str | bytes] = Link(
            downlink or LinkProfile(delay_ms=latency_ms), self._handle, rng=rng
        )
        self.timeline = Timeline()
        # A speakerphone hears what played `delay_ms` ago: keep at least that, and a frame.
        leak = self.script.leak
        history_ms = max(1000, leak.delay_ms + 2 * signals.FRAME_MS) if leak else 1000
        self.playback = Playback(
            self.timeline, underrun_threshold_ms=underrun_threshold_ms, history_ms=history_ms
        )
        self.microphone = Microphone(self.script)
        self.notifier = Notifier()
        self.webhook_result: webhook.HttpResult | None = None
        self.stream: webhook.StreamInstruction | None = None
        self._ws: WebSocketClient | None = None
        self._sequence = 0
        # The least time a media frame took on the uplink (see `MarkRecord.round_trip_s`).
        self._uplink_least_s = float("inf")
        self._timers: set[asyncio.TimerHandle] = set()
        self._hanging_up = False

    @property
    def call_sid(self) -> str:
        return self.ids.call_sid

    @property
    def closed_at(self) -> float | None:
        return self.timeline.closed_at

    def _next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    async def start(self) -> None:
        """Call the voice webhook, connect the media stream, and start streaming."""
        params = self._call_params("ringing")
        self.timeline.webhook_sent_at = time.monotonic()
        result = await self._post(self._voice_path, params)
        self.timeline.webhook_answered_at = time.monotonic()
        self.webhook_result = result
        if result.status != 200:
            raise webhook.TwimlError(f"voice webhook answered HTTP {result.status}")
        await self._open_stream(webhook.parse_twiml(result.body))

    async def _open_stream(self, instruction: webhook.StreamInstruction) -> None:
        """Connect the media stream `instruction` names and start streaming on it."""
        self.stream = instruction
        url = webhook.local_stream_url(instruction.url, self.local_stream_base_url)
        signature = webhook.sign(self._auth_token, instruction.url, {})
        if self._stream_connect_s > 0:
            await asyncio.sleep(self._stream_connect_s)
        self._ws = await WebSocketClient.connect(
            url, headers={"X-Twilio-Signature": signature, "User-Agent": "Twilio.TmeWs/1.0"}
        )
        self._ws.on_message = self._received
        self._ws.on_closed = self._on_closed
        self._send(messages.connected())
        started = time.monotonic()
        if self.timeline.stream_started_at is None:
            self.timeline.stream_started_at = started
        self._send(messages.start(self.ids, self._next_sequence(), instruction.parameters))
        self._schedule(started + FRAME_S, self._tick, 1, started)

    async def run(self, *, status_callback: bool = False, timeout_s: float = 60.0) -> Timeline:
        """Make the whole call: start, wait until the socket closes, optionally report status."""
        await self.start()
        try:
            await self.wait_closed(timeout_s)
        except TimeoutError:
            await self.aclose()
            raise
        while self.timeline.closed_by == "server":
            followup = await self.follow_action()
            if followup is None or followup.stream is None:
                break
            await self._hand_over(followup.stream, timeout_s)
        if status_callback:
            await self.send_status_callback()
        return self.timeline

    async def _hand_over(self, instruction: webhook.StreamInstruction, timeout_s: float) -> None:
        """The action answered a new `<Connect><Stream>`: the same call, on a new stream.

        What was buffered for the old stream is gone with it; the caller's
        script goes on from where it was (it is timed by the clock).
        """
        timeline = self.timeline
        now = time.monotonic()
        closed_at = timeline.closed_at or now
        self._echo(self.playback.clear(now))
        timeline.handovers.append(now)
        timeline.closed_at = timeline.closed_by = timeline.close_code = None
        self._hanging_up = False
        self.ids = StreamIds(self.ids.account_sid, self.ids.call_sid, messages.new_sid("MZ"))
        try:
            await self._open_stream(instruction)
        except OSError as exc:
            # Nobody took the new stream (the server went away meanwhile): Twilio
            # gives up on the call.
            logger.warning("caller %s: handed-over stream failed: %s", self.call_sid, exc)
            timeline.closed_at, timeline.closed_by = time.monotonic(), "twilio"
            self.notifier.notify()
            return
        # The caller's gap: no stream between the old one closing and the new one up.
        timeline.handover_gaps_s.append(time.monotonic() - closed_at)
        await self.wait_closed(timeout_s)

    async def follow_action(self) -> webhook.Followup | None:
        """Our stream was closed under the caller: request `<Connect action>`, as Twilio does.

        What its TwiML says to the caller goes in the timeline (`said`); a
        `<Dial>` too (`dialed`, `dialed_at`): the caller is transferred and
        this stand-in's call, as far as the app sees it, is over.
        """
        action = self.stream.action if self.stream is not None else None
        if not action:
            return None
        path = urllib.parse.urlsplit(action).path
        try:
            result = await webhook.post_signed(
                auth_token=self._auth_token,
                public_url=action,
                local_url=webhook.join_url(self.local_base_url, path),
                params=self._call_params("in-progress"),
            )
        except (OSError, TimeoutError) as exc:
            # Twilio would say "an application error has occurred" and hang up.
            logger.warning("caller %s: action URL unreachable: %s", self.call_sid, exc)
            self.timeline.action_status = 0
            return None
        self.timeline.action_status = result.status
        if result.status != 200:
            logger.warning("caller %s: action URL answered HTTP %d", self.call_sid, result.status)
            return None
        followup = webhook.parse_followup(result.body)
        self.timeline.said.extend(followup.said)
        if followup.dial is not None:
            self.timeline.dialed, self.timeline.dialed_at = followup.dial, time.monotonic()
            logger.info("caller %s: dialing %s", self.call_sid, followup.dial)
        return followup

    async def send_status_callback(self, call_status: str = "completed") -> webhook.HttpResult:
        """POST the call status callback, signed like Twilio's."""
        started = self.timeline.stream_started_at or 0.0
        ended = self.timeline.closed_at or started
        params = self._call_params(call_status)
        params["CallDuration"] = str(max(0, round(ended - started)))
        return await self._post(self._status_path, params)

    def _call_params(self, call_status: str) -> dict[str, str]:
        return {
            "CallSid": self.ids.call_sid,
            "AccountSid": self.ids.account_sid,
            "From": self.from_number,
            "To": self.to_number,
            "CallStatus": call_status,
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
        }

    async def _post(self, path: str, params: dict[str, str]) -> webhook.HttpResult:
        return await webhook.post_signed(
            auth_token=self._auth_token,
            public_url=webhook.join_url(self.public_base_url, path),
            local_url=webhook.join_url(self.local_base_url, path),
            params=params,
        )

    # --- timers: callbacks, not a task per call -----------------------------------------

    def _schedule(self, at: float, callback: Callable[..., None], *args: object) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            callback(*args)

        handle = loop.call_later(max(0.0, at - time.monotonic()), fire)
        self._timers.add(handle)

    # --- uplink: Twilio to the app --------------------------------------------------------

    def _send(self, text: str | None) -> float:
        """A frame for the server (None: close the socket); it arrives over the uplink
        (returns how long it will take)."""
        return self._uplink.send(text)

    def _transmit(self, text: str | None) -> None:
        if self._ws is None:
            return
        if text is _CLOSE:
            self._ws.close()
        else:
            self._ws.send_text(text)

    def _tick(self, chunk: int, t0: float) -> None:
        """One media frame on an absolute 20 ms schedule (the first 20 ms after the start)."""
        if self.timeline.closed_at is not None:
            return
        now = time.monotonic()
        self._echo(self.playback.advance(now))
        # The frame holds what the microphone took in over the 20 ms up to this tick's
        # time on the schedule (the timer may fire a little late): no sample twice or lost.
        frame_end = t0 + chunk * FRAME_S
        tick = self.microphone.tick(
            now, self.timeline.tone_started_at, self.playback, frame_end=frame_end
        )
        for text in tick.texts:
            self._send(text)
        for digit in tick.digits:
            self._send(messages.dtmf(self.ids, self._next_sequence(), digit))
            self.timeline.dtmf.append(KeyPress(now, digit, frame_end))
        frame = tick.frame
        if frame is None:
            if self.script.hangup is not None:
                self.hangup_now(self.script.hangup)
                return
            # Script over: keep the line open until the app hangs up.
            frame = self.microphone.ambient(self.playback, frame_end)
        self._record_sound(tick, frame_end)
        timestamp = self._first_timestamp_ms + 20 * (chunk - 1) + self._clock_rng.randint(-1, 1)
        took = self._send(messages.media(self.ids, self._next_sequence(), chunk, timestamp, frame))
        self._uplink_least_s = min(self._uplink_least_s, took)
        self.timeline.media_sent += 1
        self.notifier.notify()
        self._schedule(t0 + (chunk + 1) * FRAME_S, self._tick, chunk + 1, t0)

    def _record_sound(self, tick: Tick, frame_end: float) -> None:
        """The caller's sound began (ends) where its first (last) sample was taken in:
        a frame's samples are the 20 ms up to its `frame_end`, before it is sent."""
        timeline = self.timeline
        frame_start = frame_end - FRAME_S
        if tick.speech_onset and tick.sound is not None:
            timeline.sounds.append(CallerSound(tick.sound, frame_start, text=tick.text))
            if tick.sound == "speech":
                timeline.speech_started_at.append(frame_start)
        if tick.sound_end and timeline.sounds:
            timeline.sounds[-1].ended_at = frame_start + tick.sound_ms / 1000.0

    async def hangup(self, mode: Hangup = "stop") -> None:
        """End the call from the caller's side: `stop` then close, or drop the TCP connection."""
        self.hangup_now(mode)

    def hangup_now(self, mode: Hangup = "stop") -> None:
        if self._hanging_up or self._ws is None or self.timeline.closed_at is not None:
            return
        self._hanging_up = True
        if mode == "stop":
            self._send(messages.stop(self.ids, self._next_sequence()))
            self._send(_CLOSE)
            self.timeline.sent_stop = True
        else:
            self.timeline.dropped = True
            self._ws.abort()

    # --- downlink: the app to Twilio -------------------------------------------------------

    def _on_closed(self, code: int | None) -> None:
        timeline = self.timeline
        timeline.closed_at = time.monotonic()
        timeline.closed_by = "caller" if self._hanging_up else "server"
        timeline.close_code = code
        self._stop_timers()
        logger.info("caller %s: socket closed by %s", self.call_sid, timeline.closed_by)
        self.notifier.notify()

    def _stop_timers(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        self._uplink.cancel()
        self._downlink.cancel()

    def _received(self, message: str | bytes) -> None:
        """A message from the app reached Twilio's edge: it arrives over the downlink."""
        self._downlink.send(message)

    def _handle(self, message: str | bytes) -> None:
        now = time.monotonic()
        parsed = messages.parse_app_message(message, self.ids.stream_sid)
        self.timeline.protocol_errors.extend(parsed.problems)
        if isinstance(parsed, messages.AppMedia):
            self.timeline.media_received += 1
            self.timeline.media_bytes_received += len(parsed.payload)
            # Marks that came due before this frame (their timer not yet run) echo first.
            self._echo(self.playback.advance(now))
            self.playback.enqueue(parsed.payload, now, self._downlink.delivering_late_s)
        elif isinstance(parsed, messages.AppMark):
            record = self.playback.add_mark(parsed.name, now)
            if record.due_at <= now:
                self._echo(self.playback.advance(now))
            else:
                self._schedule(record.due_at, self._flush_marks)
        elif isinstance(parsed, messages.AppClear):
            self._echo(self.playback.clear(now))
        self.notifier.notify()

    def _flush_marks(self) -> None:
        self._echo(self.playback.advance(time.monotonic()))
        self.notifier.notify()

    def _echo(self, due: list[MarkRecord]) -> None:
        now = time.monotonic()
        for record in due:
            if self._echo_lost(record):
                logger.debug("caller %s: echo of mark %s lost", self.call_sid, record.name)
                continue
            record.echoed_at = now
            back_s = self._uplink.send(messages.mark(self.ids, self._next_sequence(), record.name))
            if record.run_late_s is not None and not record.cleared:
                record.round_trip_s = record.run_late_s + min(back_s, self._uplink_least_s)

    def _echo_lost(self, record: MarkRecord) -> bool:
        """Whether the script's fault loses this echo (`CallerScript.withhold_echoes_from_tone`).

        A mark due after the tone began playing sits in or after that tone; one due
        exactly as it began ends the audio before it, and is echoed.
        """
        tone = self.script.withhold_echoes_from_tone
        if tone is None:
            return False
        started = self.timeline.tone_started_at.get(tone)
        return started is not None and record.due_at > started

    async def wait_for(
        self, predicate: Callable[[], T | None], timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> T:
        """Return the first truthy `predicate()`, re-checked whenever the call's state changes."""
        return await self.notifier.wait_for(predicate, timeout_s)

    async def wait_closed(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> float:
        """When the media socket closed (by either side)."""
        return await self.wait_for(lambda: self.timeline.closed_at, timeout_s)

    async def wait_heard(
        self, tone: int, ms: float = 20.0, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> float:
        """Wait until `ms` of `tone` has played; return when that tone began playing."""

        def heard() -> float | None:
            if self.timeline.heard_ms.get(tone, 0.0) >= ms - 1e-6:
                return self.timeline.tone_started_at.get(tone)
            return None

        return await self.wait_for(heard, timeout_s)

    async def aclose(self) -> None:
        """Stop everything this caller runs (safe to call more than once)."""
        self._stop_timers()
        if self._ws is not None and not self._ws.closed:
            self._ws.abort()
