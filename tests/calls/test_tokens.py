"""Per-call stream tokens."""

from __future__ import annotations

import pytest

from calls.frontdoor.tokens import mint_stream_token, verify_stream_token

CALL = "CA" + "a" * 32
OTHER = "CA" + "b" * 32
NOW = 1_800_000_000.0


def test_token_verifies_for_its_call() -> None:
    assert verify_stream_token(mint_stream_token(CALL, NOW), CALL, NOW + 5, ttl_s=60) is None


def test_token_fails_for_another_call() -> None:
    token = mint_stream_token(CALL, NOW)
    assert verify_stream_token(token, OTHER, NOW, ttl_s=60) == "bad_signature"


def test_token_expires() -> None:
    token = mint_stream_token(CALL, NOW)
    assert verify_stream_token(token, CALL, NOW + 60, ttl_s=60) is None
    assert verify_stream_token(token, CALL, NOW + 61, ttl_s=60) == "expired"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"),
        lambda t: str(int(t.split(".")[0]) + 1) + "." + t.split(".")[1],
        lambda t: t.replace(".", ""),
        lambda t: "",
        lambda t: "abc.def",
        lambda t: "\u00b2." + t.split(".")[1],  # a digit to isdigit(), not to int()
        lambda t: "9" * 5000 + "." + t.split(".")[1],
    ],
)
def test_altered_token_fails(mutate) -> None:
    token = mutate(mint_stream_token(CALL, NOW))
    assert verify_stream_token(token, CALL, NOW, ttl_s=60) is not None


def test_token_from_the_future_fails() -> None:
    token = mint_stream_token(CALL, NOW + 3600)
    assert verify_stream_token(token, CALL, NOW, ttl_s=60) == "issued_in_future"


def test_token_depends_on_secret_key(settings) -> None:
    token = mint_stream_token(CALL, NOW)
    settings.SECRET_KEY = "another-secret-key-entirely-different"
    assert verify_stream_token(token, CALL, NOW, ttl_s=60) == "bad_signature"
