"""Twilio's HTTP side: signed webhook POSTs, TwiML `<Connect><Stream>` parsing, URL mapping."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.parse
import urllib.request
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


def sign(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """`X-Twilio-Signature` for a request Twilio makes to `url` with form `params`."""
    return str(RequestValidator(auth_token).compute_signature(url, dict(params)))


def join_url(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def _post(url: str, params: Mapping[str, str], signature: str, timeout_s: float) -> HttpResult:
    data = urllib.parse.urlencode(dict(params)).encode("ascii")
    request = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
            "User-Agent": "TwilioProxy/1.1",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = response.read().decode("utf-8", "replace")
            return HttpResult(response.status, body, response.headers.get("Content-Type", ""))
    except urllib.error.HTTPError as exc:
        body = exc.read().decode("utf-8", "replace")
        return HttpResult(exc.code, body, exc.headers.get("Content-Type", ""))


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
    return await asyncio.to_thread(_post, local_url, params, signature, timeout_s)


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
    return StreamInstruction(str(stream.get("url")), parameters)


def local_stream_url(stream_url: str, local_base_url: str) -> str:
    """Map the public `wss://host/path` to the local server, keeping path and query."""
    public = urllib.parse.urlsplit(stream_url)
    local = urllib.parse.urlsplit(local_base_url)
    scheme = {"http": "ws", "https": "wss"}.get(local.scheme, local.scheme)
    return urllib.parse.urlunsplit((scheme, local.netloc, public.path, public.query, ""))
