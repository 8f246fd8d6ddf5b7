"""A WebSocket client driven by callbacks: the websockets library's sans-I/O protocol on a socket.

The simulated Twilio caller sends 50 frames a second and handles as many;
hundreds of them share one load-generator process. The websockets asyncio
API costs a future and a task wake-up per message each way; this client
costs a function call: bytes in, `on_message(...)` out, `send_text()` writes.
It speaks the same protocol (the library's own parser and framer), over a
real TCP connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import cast

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

OnMessage = Callable[[str | bytes], None]
OnClosed = Callable[[int | None], None]


class WebSocketClient(asyncio.Protocol):
    """One client connection; `connect()` returns once the handshake is done."""

    def __init__(self, url: str, headers: Mapping[str, str], max_size: int | None) -> None:
        self._protocol = ClientProtocol(parse_uri(url), max_size=max_size)
        self._headers = dict(headers)
        self._transport: asyncio.Transport | None = None
        self._opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._fragments: list[bytes] = []
        self._fragment_opcode: Opcode | None = None
        self.on_message: OnMessage = lambda message: None
        self.on_closed: OnClosed = lambda code: None
        self.closed = False

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        headers: Mapping[str, str],
        timeout_s: float = 10.0,
        max_size: int | None = 2**20,
    ) -> WebSocketClient:
        uri = parse_uri(url)
        loop = asyncio.get_running_loop()
        client = cls(url, headers, max_size)
        try:
            async with asyncio.timeout(timeout_s):
                await loop.create_connection(lambda: client, uri.host, uri.port)
                await client._opened
        except BaseException:
            client.abort()  # a handshake answered after we gave up opens nothing
            raise
        return client

    @property
    def close_code(self) -> int | None:
        return self._protocol.close_rcvd.code if self._protocol.close_rcvd else None

    # --- sending --------------------------------------------------------------------------

    def send_text(self, text: str) -> bool:
        """Send one text message; False if the connection is no longer open."""
        if self._protocol.state is not State.OPEN:
            return False
        self._protocol.send_text(text.encode("utf-8"))
        self._flush()
        return True

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (the server's close frame ends the connection)."""
        if self._protocol.state is State.OPEN:
            self._protocol.send_close(code, reason)
            self._flush()

    def abort(self) -> None:
        """Drop the TCP connection with no closing handshake (a network failure)."""
        if self._transport is not None:
            self._transport.abort()

    def _flush(self) -> None:
        transport = self._transport
        if transport is None:
            return
        for chunk in self._protocol.data_to_send():
            if chunk:
                transport.write(chunk)
            elif transport.can_write_eof():
                transport.write_eof()
            else:
                transport.close()

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        request = self._protocol.connect()
        for name, value in self._headers.items():
            request.headers[name] = value
        self._protocol.send_request(request)
        self._flush()

    def data_received(self, data: bytes) -> None:
        self._protocol.receive_data(data)
        self._process()

    def eof_received(self) -> bool | None:
        self._protocol.receive_eof()
        self._process()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._opened.done():
            self._opened.set_exception(ConnectionError("connection lost during the handshake"))
        if not self.closed:
            self.closed = True
            self.on_closed(self.close_code)

    def _process(self) -> None:
        for event in self._protocol.events_received():
            if isinstance(event, Response):
                if self._opened.done():
                    continue  # the opener gave up (its timeout) before the answer came
                if self._protocol.handshake_exc is not None:
                    self._opened.set_exception(self._protocol.handshake_exc)
                else:
                    self._opened.set_result(None)
            elif isinstance(event, Frame):
                self._frame(event)
        self._flush()  # pongs and the closing handshake's replies
        if self._protocol.state is State.CLOSED and self._transport is not None:
            self._transport.close()

    def _frame(self, frame: Frame) -> None:
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            self._fragment_opcode = frame.opcode
            self._fragments = [bytes(frame.data)]
        elif frame.opcode is Opcode.CONT and self._fragment_opcode is not None:
            self._fragments.append(bytes(frame.data))
        else:
            return  # ping, pong and close: the protocol handles them
        if not frame.fin:
            return
        data = b"".join(self._fragments)
        text = self._fragment_opcode is Opcode.TEXT
        self._fragments, self._fragment_opcode = [], None
        self.on_message(data.decode("utf-8") if text else data)
