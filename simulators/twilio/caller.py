"""`TwilioCaller`: one simulated phone call against the project's HTTP and WebSocket server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from simulators import mulaw, signals
from simulators.twilio import messages, webhook
from simulators.twilio.messages import StreamIds
from simulators.twilio.microphone import Microphone
from simulators.twilio.playback import Playback
from simulators.twilio.script import CallerScript, Hangup
from simulators.twilio.timeline import MarkRecord, Timeline
from simulators.waiting import DEFAULT_TIMEOUT_S, Notifier

logger = logging.getLogger(__name__)

T = TypeVar("T")

FRAME_S = 0.02
_SILENT_FRAME = mulaw.silence(signals.FRAME_BYTES)


class TwilioCaller:
    """Behaves like Twilio Media Streams for one inbound call.

    `public_base_url` is what Twilio would call (and sign); requests really go to
    `local_base_url` (the media stream too, unless `local_stream_base_url` is given).
    `latency_ms` is simulated one-way network delay in each direction.
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
        underrun_threshold_ms: float = 1.0,
        local_stream_base_url: str | None = None,
    ) -> None:
        self.public_base_url = public_base_url
        self.local_base_url = local_base_url
        self.local_stream_base_url = local_stream_base_url or local_base_url
        self._auth_token = auth_token
        self.script = script or CallerScript()
        self._voice_path, self._status_path = voice_path, status_path
        self.ids = StreamIds(
            account_sid or messages.new_sid("AC"),
            call_sid or messages.new_sid("CA"),
            messages.new_sid("MZ"),
        )
        self.from_number, self.to_number = from_number, to_number
        self._latency_s = latency_ms / 1000.0
        self.timeline = Timeline()
        self.playback = Playback(self.timeline, underrun_threshold_ms=underrun_threshold_ms)
        self.microphone = Microphone(self.script)
        self.notifier = Notifier()
        self.webhook_result: webhook.HttpResult | None = None
        self.stream: webhook.StreamInstruction | None = None
        self._ws: ClientConnection | None = None
        self._sequence = 0
        self._outbox: asyncio.Queue[tuple[float, str | None]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
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
        result = await self._post(self._voice_path, params)
        self.webhook_result = result
        if result.status != 200:
            raise webhook.TwimlError(f"voice webhook answered HTTP {result.status}")
        self.stream = webhook.parse_twiml(result.body)
        url = webhook.local_stream_url(self.stream.url, self.local_stream_base_url)
        signature = webhook.sign(self._auth_token, self.stream.url, {})
        self._ws = await connect(
            url,
            additional_headers={"X-Twilio-Signature": signature},
            user_agent_header="Twilio.TmeWs/1.0",
            compression=None,
        )
        loop = asyncio.get_running_loop()
        self._send(messages.connected())
        self.timeline.stream_started_at = loop.time()
        self._send(messages.start(self.ids, self._next_sequence(), self.stream.parameters))
        self._tasks = [
            asyncio.create_task(self._writer()),
            asyncio.create_task(self._reader()),
            asyncio.create_task(self._talk(loop.time())),
        ]

    async def run(self, *, status_callback: bool = False, timeout_s: float = 60.0) -> Timeline:
        """Make the whole call: start, wait until the socket closes, optionally report status."""
        await self.start()
        try:
            await self.wait_closed(timeout_s)
        except TimeoutError:
            await self.aclose()
            raise
        if status_callback:
            await self.send_status_callback()
        return self.timeline

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

    def _send(self, text: str | None) -> None:
        """Queue a frame for the server (None: close); it arrives after the one-way latency."""
        loop = asyncio.get_running_loop()
        self._outbox.put_nowait((loop.time() + self._latency_s, text))

    async def _writer(self) -> None:
        ws = self._ws
        assert ws is not None
        loop = asyncio.get_running_loop()
        while True:
            deliver_at, text = await self._outbox.get()
            if deliver_at > loop.time():
                await asyncio.sleep(deliver_at - loop.time())
            if text is None:
                await ws.close()
                return
            try:
                await ws.send(text)
            except ConnectionClosed:
                return

    async def _talk(self, t0: float) -> None:
        """Send one media frame every 20 ms on an absolute schedule, then hang up."""
        loop = asyncio.get_running_loop()
        chunk = 0
        while True:
            chunk += 1
            # The first 20 ms frame is complete 20 ms after the stream starts.
            delay = t0 + chunk * FRAME_S - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            now = loop.time()
            self._echo(self.playback.advance(now))
            tick = self.microphone.tick(now, self.timeline.tone_started_at)
            for text in tick.texts:
                self._send(text)
            frame = tick.frame
            if frame is None:
                if self.script.hangup is not None:
                    break
                frame = _SILENT_FRAME  # script over: keep the line open until the app hangs up
            if tick.speech_onset:
                self.timeline.speech_started_at.append(now)
            self._send(messages.media(self.ids, self._next_sequence(), chunk, chunk * 20, frame))
            self.timeline.media_sent += 1
            self.notifier.notify()
        if self.script.hangup is not None:
            await self.hangup(self.script.hangup)

    async def hangup(self, mode: Hangup = "stop") -> None:
        """End the call from the caller's side: `stop` then close, or drop the TCP connection."""
        if self._hanging_up or self._ws is None or self.timeline.closed_at is not None:
            return
        self._hanging_up = True
        if mode == "stop":
            self._send(messages.stop(self.ids, self._next_sequence()))
            self._send(None)
            self.timeline.sent_stop = True
        else:
            self.timeline.dropped = True
            self._ws.transport.abort()

    async def _reader(self) -> None:
        ws = self._ws
        assert ws is not None
        loop = asyncio.get_running_loop()
        try:
            async for message in ws:
                if self._latency_s > 0:
                    loop.call_later(self._latency_s, self._handle, message)
                else:
                    self._handle(message)
        except ConnectionClosed:
            pass
        self._on_closed(ws)

    def _on_closed(self, ws: ClientConnection) -> None:
        timeline = self.timeline
        timeline.closed_at = asyncio.get_running_loop().time()
        timeline.closed_by = "caller" if self._hanging_up else "server"
        timeline.close_code = ws.close_code
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        logger.info("caller %s: socket closed by %s", self.call_sid, timeline.closed_by)
        self.notifier.notify()

    def _handle(self, message: str | bytes) -> None:
        now = asyncio.get_running_loop().time()
        parsed = messages.parse_app_message(message, self.ids.stream_sid)
        self.timeline.protocol_errors.extend(parsed.problems)
        if isinstance(parsed, messages.AppMedia):
            self.timeline.media_received += 1
            self.timeline.media_bytes_received += len(parsed.payload)
            self.playback.enqueue(parsed.payload, now)
        elif isinstance(parsed, messages.AppMark):
            record = self.playback.add_mark(parsed.name, now)
            if record.due_at <= now:
                self._echo(self.playback.advance(now))
            else:
                asyncio.get_running_loop().call_at(record.due_at, self._flush_marks)
        elif isinstance(parsed, messages.AppClear):
            self._echo(self.playback.clear(now))
        self.notifier.notify()

    def _flush_marks(self) -> None:
        self._echo(self.playback.advance(asyncio.get_running_loop().time()))
        self.notifier.notify()

    def _echo(self, due: list[MarkRecord]) -> None:
        now = asyncio.get_running_loop().time()
        for record in due:
            record.echoed_at = now
            self._send(messages.mark(self.ids, self._next_sequence(), record.name))

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
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._ws is not None:
            self._ws.transport.abort()
