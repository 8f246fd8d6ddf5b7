"""The new host's side of the host check: its rows, its admin pages, the demo's next steps.

Run by `run.sh` with the host's virtualenv, in the host's directory, after
`simulate_call` drove its calls. Standard library and the installed wheel only.

    python check_host.py SOURCE_TREE
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

HOST_DIR = Path.cwd()
SOURCE = Path(sys.argv[1]).resolve()
sys.path.insert(0, str(HOST_DIR))  # the host's `mysite`, as manage.py would find it


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"host check FAILED: {what}")
    sys.stdout.write(f"  ok  {what}\n")


def installed_from_the_wheel() -> None:
    import callcore
    import calls
    import playout

    for module in (calls, callcore, playout):
        where = Path(module.__file__).resolve()
        check(
            "site-packages" in where.parts and not where.is_relative_to(SOURCE),
            f"{module.__name__} is the installed wheel's ({where.parent})",
        )


def rows() -> dict[str, object]:
    os.environ["DJANGO_SETTINGS_MODULE"] = "mysite.settings"
    import django

    django.setup()
    from django.conf import settings

    from calls.models import BargeInEvent, CallSession, PlayoutLog

    check(
        Path(settings.DATABASES["default"]["NAME"]).resolve().is_relative_to(HOST_DIR),
        "the calls are in the host's own database",
    )
    calls = list(CallSession.objects.order_by("started_at"))
    check(len(calls) == 5, f"five calls recorded ({len(calls)})")
    tail, goodbye, tool, transfer, second_item = calls
    check(
        {call.agent_name for call in calls} == {"orders"}
        and all(call.agent.get("source") == "hook" for call in calls),
        "every call had the agent the host's hooks chose (mysite.callagents.Hooks)",
    )
    [tool_call] = PlayoutLog.objects.filter(call=tool, kind="tool_call")
    check(
        tool_call.details["name"] == "order_status" and tool_call.details["outcome"] == "ok",
        "the host's own tool ran (order_status, from the installed app's @tool)",
    )
    check(
        transfer.end_reason == "transferred" and transfer.transfer_target == "billing",
        "the transfer to the host's target ended the call as transferred",
    )
    barge_in = BargeInEvent.objects.get(call=tail)
    heard = barge_in.audio_end_ms
    check(
        heard is not None and heard > 0 and barge_in.unplayed_ms > 0,
        f"barge-in in the tail: the model's memory truncated at {heard} ms, "
        f"{barge_in.unplayed_ms} ms cleared at Twilio",
    )
    check(
        PlayoutLog.objects.filter(call=tail, kind="truncated").exists(),
        "the truncation confirmed by the model is in the playout log",
    )
    check(goodbye.end_reason == "agent_hangup", f"goodbye ended {goodbye.end_reason}")
    check(
        PlayoutLog.objects.filter(call=goodbye, kind="drain_completed").exists(),
        "the goodbye drained before the hang-up",
    )
    check(
        BargeInEvent.objects.filter(call=second_item).count() == 1,
        "the barge-in in the second item (under Daphne) is recorded",
    )
    return {"pks": [call.pk for call in calls], "sids": [call.call_sid for call in calls]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "mysite.asgi:application",
            "--port",
            str(port),
            "--lifespan",
            "on",
            "--log-level",
            "warning",
        ],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "mysite.settings"},
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # another process's start: poll its port, bounded
        if server.poll() is not None:
            raise SystemExit("host check FAILED: the host's server exited at start-up")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("host check FAILED: the host's server did not listen within 30 s")


def admin_pages(found: dict[str, object]) -> None:
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("reviewer", "reviewer@example.com", "pw-review-1")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = serve(port)
    try:
        jar = http.cookiejar.CookieJar()
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

        def get(path: str) -> str:
            with browser.open(base + path, timeout=30) as response:
                check(response.status == 200, f"GET {path} answers 200")
                return response.read().decode()

        page = get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token is not None
        form = urllib.parse.urlencode(
            {
                "csrfmiddlewaretoken": token.group(1),
                "username": "reviewer",
                "password": "pw-review-1",
                "next": "/admin/",
            }
        ).encode()
        login = urllib.request.Request(
            base + "/admin/login/", data=form, headers={"Referer": base + "/admin/login/"}
        )
        with browser.open(login, timeout=30) as response:
            check("/admin/login/" not in response.url, "the superuser logs in to the host's admin")
        listing = get("/admin/calls/callsession/")
        sids = found["sids"]
        assert isinstance(sids, list)
        check(all(sid in listing for sid in sids), "the calls are listed in the admin")
        check("/admin/calls/callsession/live/" in listing, "the list links to the live view")
        pks = found["pks"]
        assert isinstance(pks, list)
        page = get(f"/admin/calls/callsession/{pks[0]}/change/")
        check('id="call-timeline"' in page, "a call's page draws its timeline")
        check("barge" in page.lower(), "a call's page shows its barge-in")
        live = get("/admin/calls/callsession/live/")
        check('id="live"' in live and "/callbridge/live/ws/" in live, "the live view opens")
        live_socket(port, "; ".join(f"{c.name}={c.value}" for c in jar))
        forged = urllib.request.Request(
            base + "/twilio/voice/",
            data=b"CallSid=CAforged",
            headers={"X-Twilio-Signature": "forged"},
        )
        try:
            urllib.request.urlopen(forged, timeout=30)
            refused = None
        except urllib.error.HTTPError as error:
            refused = error.code
        check(refused == 403, f"a forged webhook is refused ({refused})")
    finally:
        server.terminate()
        server.wait(30)


def live_socket(port: int, cookies: str) -> None:
    """The live view's socket: inside the host's sessions and the Origin check."""
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    url = f"ws://127.0.0.1:{port}/callbridge/live/ws/"
    origin = f"http://127.0.0.1:{port}"
    with connect(url, additional_headers={"Cookie": cookies, "Origin": origin}) as socket_:
        socket_.ping().wait(10)
        check(True, "the staff's live view socket is accepted with the session")
    strangers = (
        ({"Origin": origin}, "without a session"),
        ({"Cookie": cookies, "Origin": "https://elsewhere.example"}, "from another origin"),
    )
    for headers, who in strangers:
        try:
            with connect(url, additional_headers=headers) as socket_:
                socket_.recv(timeout=10)
            refused = False
        except (InvalidStatus, ConnectionClosed):  # at the handshake, or closed at once
            refused = True
        except TimeoutError:  # accepted and left open
            refused = False
        check(refused, f"the live view socket is refused {who}")


def next_steps_as_printed() -> None:
    """The review commands `simulate_call` printed, run exactly as printed."""
    printed = (HOST_DIR.parent / "uvicorn.txt").read_text()
    commands = [
        line.strip() for line in printed.splitlines() if "manage.py drain_diagnostics" in line
    ]
    check(bool(commands), "simulate_call printed how to review the calls")
    environment = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    for command in commands:
        done = subprocess.run(
            command, shell=True, cwd=HOST_DIR, env=environment, capture_output=True, text=True
        )
        check(done.returncode == 0 and "CA" in done.stdout, f"as printed: {command}")


if __name__ == "__main__":
    installed_from_the_wheel()
    found = rows()
    admin_pages(found)
    next_steps_as_printed()
