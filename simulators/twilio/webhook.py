"""Twilio's HTTP side: signed webhook POSTs, TwiML `<Connect><Stream>` parsing, URL mapping."""

from __future__ import annotations

import asyncio
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass

from twilio.request_validator import RequestValidator


class TwimlError(ValueError):
    """The voice webhook did not answer with a usable `<Connect><Stream>`."""


@dataclass(frozen=True)
class HttpResult:
    status: int
    body: str
    content_type: str


@dataclass(frozen=True)
class StreamInstruction:
    """The `<Stream>` of the TwiML: its URL exactly as written, and its parameters."""

    url: str
    parameters: dict[str, str]
    # `<Connect action>`: requested when the stream ends with the caller still there.
    action: str | None = None


@dataclass(frozen=True)
class Followup:
    """The TwiML an action URL answered: what Twilio says to the caller, and whether it hangs up."""

    said: tuple[str, ...]
    hangup: bool
    # A new `<Connect><Stream>` (a handover): the call goes on on a new stream.
    stream: StreamInstruction | None = None
    # A `<Dial>`: the number or SIP address Twilio connects the caller to (a transfer).
    dial: str | None = None


def sign(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """`X-Twilio-Signature` for a request Twilio makes to `url` with form `params`."""
    return str(RequestValidator(auth_token).compute_signature(url, dict(params)))


def join_url(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + "/" + path.lstrip("/")


async def _post(url: str, params: Mapping[str, str], signature: str) -> HttpResult:
    """One HTTP/1.1 POST on a connection of its own, as Twilio's webhook client makes it.

    Written on asyncio streams (no thread per request): a load generator may
    have hundreds of calls ringing at once.
    """
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    body = urllib.parse.urlencode(dict(params)).encode("ascii")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nX-Twilio-Signature: {signature}\r\n"
        "User-Agent: TwilioProxy/1.1\r\nConnection: close\r\n\r\n"
    )
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(head.encode("latin-1") + body)
        await writer.drain()
        status_line = await reader.readline()
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = headers.get("content-length")
        if headers.get("transfer-encoding", "").lower() == "chunked":
            payload = await _read_chunked(reader)
        else:
            payload = await (reader.readexactly(int(length)) if length else reader.read())
    finally:
        writer.close()
    fields = status_line.split()
    if len(fields) < 2 or not fields[0].startswith(b"HTTP/") or not fields[1].isdigit():
        raise ConnectionError(f"no HTTP answer from {url}: {status_line[:80]!r}")
    status = int(fields[1])
    return HttpResult(status, payload.decode("utf-8", "replace"), headers.get("content-type", ""))


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readline()).split(b";")[0], 16)
        if size == 0:
            await reader.readline()  # the blank line after the last chunk
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)  # CRLF


async def post_signed(
    *,
    auth_token: str,
    public_url: str,
    local_url: str,
    params: Mapping[str, str],
    timeout_s: float = 10.0,
) -> HttpResult:
    """POST `params` to `local_url`, signed as Twilio signs a request to `public_url`."""
    signature = sign(auth_token, public_url, params)
    async with asyncio.timeout(timeout_s):
        return await _post(local_url, params, signature)


def parse_twiml(text: str) -> StreamInstruction:
    """Extract `<Response><Connect><Stream url=..><Parameter/>..` from TwiML."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise TwimlError(f"TwiML is not XML: {exc}") from exc
    if root.tag != "Response":
        raise TwimlError(f"TwiML root is <{root.tag}>, not <Response>")
    stream = root.find("./Connect/Stream")
    if stream is None or not stream.get("url"):
        raise TwimlError("TwiML has no <Connect><Stream url=...>")
    parameters = {
        p.get("name", ""): p.get("value", "")
        for p in stream.findall("./Parameter")
        if p.get("name")
    }
    connect = root.find("./Connect")
    action = connect.get("action") if connect is not None else None
    return StreamInstruction(str(stream.get("url")), parameters, action or None)


def parse_followup(text: str) -> Followup:
    """The verbs Twilio would run after a `<Connect>` ended: `<Say>` texts, a new
    `<Connect><Stream>`, a `<Dial>` (its number or SIP address), or `<Hangup>`."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise TwimlError(f"TwiML is not XML: {exc}") from exc
    if root.tag != "Response":
        raise TwimlError(f"TwiML root is <{root.tag}>, not <Response>")
    said = tuple((verb.text or "").strip() for verb in root if verb.tag == "Say")
    if root.find("./Connect/Stream") is not None:
        return Followup(said, hangup=False, stream=parse_twiml(text))
    dial = root.find("./Dial")
    if dial is not None:
        return Followup(said, hangup=False, dial=_dial_target(dial))
    # With no more verbs, Twilio ends the call too: `<Hangup>` only makes it explicit.
    return Followup(said, hangup=True)


def _dial_target(dial: ET.Element) -> str:
    """What `<Dial>` connects to: its `<Number>` or `<Sip>`, or the number as its text."""
    nouns = list(dial)
    if nouns:
        noun = nouns[0]
        if noun.tag not in ("Number", "Sip"):
            raise TwimlError(f"<Dial><{noun.tag}> is not simulated (only <Number> and <Sip>)")
        target = (noun.text or "").strip()
    else:
        target = (dial.text or "").strip()
    if not target:
        raise TwimlError("<Dial> names no number or SIP address")
    return target


def local_stream_url(stream_url: str, local_base_url: str) -> str:
    """Map the public `wss://host/path` to the local server, keeping path and query."""
    public = urllib.parse.urlsplit(stream_url)
    local = urllib.parse.urlsplit(local_base_url)
    scheme = {"http": "ws", "https": "wss"}.get(local.scheme, local.scheme)
    return urllib.parse.urlunsplit((scheme, local.netloc, public.path, public.query, ""))
