"""Per-call stream tokens: minted by the webhook, required by the media stream.

A token is `<issued_at>.<hmac>`: an HMAC over the call SID and the issue time,
keyed from SECRET_KEY. It binds the media stream to the call that Twilio's
signed webhook announced, and it expires, so a leaked TwiML document cannot
be replayed later.
"""

from __future__ import annotations

from django.utils.crypto import constant_time_compare, salted_hmac

from calls.conf import callbridge_settings

_SALT = "calls.stream-token"
# Clock skew tolerated between the process that minted and the one verifying.
_FUTURE_SKEW_S = 30


def _digest(call_sid: str, issued_at: int) -> str:
    return str(salted_hmac(_SALT, f"{call_sid}|{issued_at}", algorithm="sha256").hexdigest())


def mint_stream_token(call_sid: str, now: float) -> str:
    """Token for `call_sid`; `now` is wall-clock Unix seconds."""
    issued_at = int(now)
    return f"{issued_at}.{_digest(call_sid, issued_at)}"


def verify_stream_token(
    token: str, call_sid: str, now: float, ttl_s: int | None = None
) -> str | None:
    """Check `token` for `call_sid` at wall-clock `now`.

    Returns None when valid, else a short reason for the log (never the token).
    """
    ttl = callbridge_settings().STREAM_TOKEN_TTL_S if ttl_s is None else ttl_s
    issued_text, sep, digest = token.partition(".")
    # isdigit() alone accepts characters like "²" that int() refuses.
    if not sep or not digest or not (issued_text.isascii() and issued_text.isdigit()):
        return "malformed"
    if len(issued_text) > 12:
        return "malformed"
    issued_at = int(issued_text)
    if not constant_time_compare(digest, _digest(call_sid, issued_at)):
        return "bad_signature"
    if now - issued_at > ttl:
        return "expired"
    if issued_at - now > _FUTURE_SKEW_S:
        return "issued_in_future"
    return None
