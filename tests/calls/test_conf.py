"""`CALLBRIDGE`: each kind of mistake is a system-check error with its own id, and the
same validation fails closed where no check runs (the ASGI servers)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import Error
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from calls import conf
from calls.checks import check_callbridge_settings
from calls.conf import callbridge_settings, from_strings, markdown_table
from tests.callbridge import configure

README = Path(__file__).resolve().parents[2] / "README.md"


def errors(settings: Any, **values: Any) -> list[Error]:
    configure(settings, **values)
    return check_callbridge_settings()


def ids(found: list[Error]) -> list[str]:
    return [error.id for error in found]


def test_the_test_settings_pass_every_check(settings: Any) -> None:
    assert check_callbridge_settings() == []


def test_a_namespace_that_is_not_a_dict_is_E001(settings: Any) -> None:
    settings.CALLBRIDGE = ["PUBLIC_BASE_URL"]
    assert ids(check_callbridge_settings()) == [conf.NOT_A_DICT]


def test_a_misspelled_key_is_E002_with_the_key_it_meant(settings: Any) -> None:
    [error] = errors(settings, PLAYOUT_LEED_MS=300)
    assert error.id == "callbridge.E002"
    assert "PLAYOUT_LEED_MS" in error.msg
    assert error.hint == "did you mean 'PLAYOUT_LEAD_MS'?"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("PLAYOUT_LEAD_MS", "400", "expected int"),  # a string from the environment, unparsed
        ("MODEL_MAX_RECOVERIES", True, "expected int"),  # bool is an int to Python, not to us
        ("AGENT_GREETING", None, "expected str"),
        ("OPENAI_WEBSOCKET_BASE_URL", 8080, "expected str or None"),
    ],
)
def test_a_value_of_the_wrong_type_is_E003(
    settings: Any, key: str, value: Any, expected: str
) -> None:
    [error] = errors(settings, **{key: value})
    assert (error.id, error.hint) == ("callbridge.E003", expected)
    assert key in error.msg


@pytest.mark.parametrize(
    ("key", "value", "hint"),
    [
        ("OPENAI_VAD_THRESHOLD", 1.5, "0.0 to 1.0"),
        ("STREAM_TOKEN_TTL_S", 1, "5 to 3600"),
        ("UPLINK_CHUNK_MS", 50, "a multiple of 20"),
        (
            "OPENAI_WEBSOCKET_BASE_URL",
            "https://api.example",
            "an address with a host, starting wss:// (with DEBUG off)",
        ),
        (
            "PUBLIC_BASE_URL",
            "http://x.example",
            "an address with a host, starting https:// (with DEBUG off)",
        ),
    ],
)
def test_a_value_out_of_range_is_E004(settings: Any, key: str, value: Any, hint: str) -> None:
    [error] = errors(settings, **{key: value})
    assert (error.id, error.hint) == ("callbridge.E004", hint)


def test_plain_http_is_for_a_developer_machine_only(settings: Any) -> None:
    settings.DEBUG = True
    assert errors(settings, PUBLIC_BASE_URL="http://localhost:8000") == []


@pytest.mark.parametrize("key", ["PUBLIC_BASE_URL", "TWILIO_AUTH_TOKEN", "OPENAI_API_KEY"])
def test_a_missing_required_value_is_E005(settings: Any, key: str) -> None:
    settings.CALLBRIDGE = {k: v for k, v in settings.CALLBRIDGE.items() if k != key}
    [error] = check_callbridge_settings()
    assert error.id == "callbridge.E005"
    assert key in error.msg


def test_no_namespace_at_all_is_E005_with_the_three_values_to_set(settings: Any) -> None:
    del settings.CALLBRIDGE
    [error] = check_callbridge_settings()
    assert error.id == "callbridge.E005"
    assert "OPENAI_API_KEY" in error.hint


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"CALL_ALIVE_INTERVAL_S": 30.0, "CALL_LOST_AFTER_S": 30.0}, "CALL_LOST_AFTER_S"),
        ({"PLAYOUT_REFILL_MS": 600}, "PLAYOUT_REFILL_MS"),
        ({"PLAYOUT_START_FILL_MS": 500}, "PLAYOUT_START_FILL_MS"),
        ({"TWILIO_MEDIA_MESSAGE_MS": 100, "PLAYOUT_FRAME_MS": 30}, "TWILIO_MEDIA_MESSAGE_MS"),
    ],
)
def test_values_that_contradict_each_other_are_E006(
    settings: Any, values: dict[str, Any], message: str
) -> None:
    [error] = errors(settings, **values)
    assert error.id == "callbridge.E006"
    assert error.msg.startswith(message)


def test_a_secret_is_never_shown_in_an_error(settings: Any) -> None:
    [error] = errors(settings, OPENAI_API_KEY=12345678)
    assert "12345678" not in error.msg
    assert "(hidden)" in error.msg


def test_manage_py_check_fails_naming_every_problem(settings: Any) -> None:
    configure(settings, PLAYOUT_LEED_MS=1, OPENAI_VAD_THRESHOLD=2.0)
    with pytest.raises(SystemCheckError) as raised:
        call_command("check")
    assert "callbridge.E002" in str(raised.value)
    assert "callbridge.E004" in str(raised.value)


def test_the_platform_fails_closed_where_no_check_runs(settings: Any) -> None:
    """The ASGI servers run no system checks: the first read of the settings refuses."""
    from calls.live.config import BridgeConfig
    from calls.live.process import ProcessConfig

    configure(settings, PLAYOUT_LEAD_MS="lots")
    for read in (callbridge_settings, BridgeConfig.from_django, ProcessConfig.from_django):
        with pytest.raises(ImproperlyConfigured, match=r"callbridge\.E003.*PLAYOUT_LEAD_MS"):
            read()


def test_a_change_of_the_settings_is_read_again(settings: Any) -> None:
    assert callbridge_settings().PLAYOUT_LEAD_MS == 260
    configure(settings, PLAYOUT_LEAD_MS=600)
    assert callbridge_settings().PLAYOUT_LEAD_MS == 600


def test_strings_from_the_environment_are_parsed_to_each_type() -> None:
    parsed = from_strings(
        {
            "PLAYOUT_LEAD_MS": "600",
            "OPENAI_VAD_THRESHOLD": "0.6",
            "AGENT_GREETING": "Hello.",
            "OPENAI_WEBSOCKET_BASE_URL": "",
            "MODEL_MAX_RECOVERIES": "two",
            "HOME": "/root",
        }
    )
    assert parsed == {
        "PLAYOUT_LEAD_MS": 600,
        "OPENAI_VAD_THRESHOLD": 0.6,
        "AGENT_GREETING": "Hello.",
        "OPENAI_WEBSOCKET_BASE_URL": None,
        "MODEL_MAX_RECOVERIES": "two",  # kept as it is: the check names it (E003)
    }


def test_the_readme_shows_every_setting_as_defined() -> None:
    """The README's table is `python -m calls.conf`'s output, between its markers."""
    text = README.read_text()
    found = re.search(r"<!-- settings:begin -->\n(.*?)<!-- settings:end -->", text, re.S)
    assert found is not None, "README.md lacks the settings markers"
    assert found.group(1).strip() == markdown_table().strip(), (
        "README.md's settings table is stale: run `make settings-table`"
    )


def test_webhooks_not_in_the_urlconf_are_E007(settings: Any) -> None:
    from calls.checks import check_webhooks_routed

    assert check_webhooks_routed() == []
    settings.ROOT_URLCONF = "tests.calls.urls_without_webhooks"
    [error] = check_webhooks_routed()
    assert error.id == "callbridge.E007"
    assert "include('calls.urls')" in error.hint


def test_the_ready_router_refuses_to_build_without_the_webhooks(settings: Any) -> None:
    """Where no check runs (the ASGI server), the router says what is missing at start-up."""
    from django.core.asgi import get_asgi_application

    from calls.asgi import callbridge_application

    settings.ROOT_URLCONF = "tests.calls.urls_without_webhooks"
    with pytest.raises(ImproperlyConfigured, match=r"include\('calls.urls'\)"):
        callbridge_application(get_asgi_application())


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("PUBLIC_BASE_URL", "https://"),  # no host
        ("PUBLIC_BASE_URL", "https://calls.example.com/app"),  # a path: signatures break
        ("PUBLIC_BASE_URL", "https://calls.example.com/?x=1"),
        ("PUBLIC_BASE_URL", "http://localhost:8000"),  # Twilio never calls in clear
        ("OPENAI_WEBSOCKET_BASE_URL", "ws://proxy.example.com/v1"),  # the key in clear
        ("TWILIO_API_BASE_URL", "http://api.example.com"),  # the token in clear
        ("TWILIO_API_BASE_URL", "ftp:/x"),
        ("CALL_LOST_AFTER_S", float("nan")),  # passes every comparison
        ("OPENAI_VAD_THRESHOLD", float("inf")),
    ],
)
def test_an_address_or_number_that_would_fail_open_is_E004(
    settings: Any, key: str, value: Any
) -> None:
    settings.DEBUG = False
    [error] = errors(settings, **{key: value})
    assert error.id == "callbridge.E004"


def test_a_stand_in_on_this_machine_may_be_spoken_to_in_clear(settings: Any) -> None:
    settings.DEBUG = False
    assert (
        errors(
            settings,
            OPENAI_WEBSOCKET_BASE_URL="ws://127.0.0.1:8765/v1",
            TWILIO_API_BASE_URL="http://localhost:8766",
        )
        == []
    )


def test_a_secret_of_spaces_is_not_set(settings: Any) -> None:
    [error] = errors(settings, TWILIO_AUTH_TOKEN="   ")
    assert error.id == "callbridge.E005"


def test_a_server_with_a_wrong_setting_refuses_to_start(settings: Any) -> None:
    """What the ASGI server builds at start-up names the problem (no check runs there)."""
    from django.core.asgi import get_asgi_application

    from calls.asgi import callbridge_application

    configure(settings, PLAYOUT_LEAD_MS="400")
    with pytest.raises(ImproperlyConfigured, match=r"callbridge\.E003.*PLAYOUT_LEAD_MS"):
        callbridge_application(get_asgi_application())
