"""Static files in production: collected with hashed names and gzip copies, served by WhiteNoise.

`collectstatic` runs as `make serve` runs it, under the production settings
(`config.settings`) in a fresh interpreter, into a temporary STATIC_ROOT.
The admin's stylesheet is then asked for through Django's ASGI application
with debug off, and from the production server under Uvicorn.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import secrets
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from asgiref.testing import ApplicationCommunicator
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.asgi import get_asgi_application

from config import settings as production
from simulators.stack import PUBLIC_BASE_URL, ServerProcess

ROOT = Path(__file__).resolve().parents[2]
CSS = "admin/css/base.css"
# What WhiteNoise gives a file whose name carries its content's hash: ten years.
FOR_EVER = "max-age=315360000"
# The proxy in front of production says the request came over TLS.
VIA_PROXY = {"x-forwarded-proto": "https"}
# WhiteNoise 6 answers with a file iterator; Django's ASGI handler reads it in a
# thread and says so once. Expected here, not a fault.
pytestmark = pytest.mark.filterwarnings(
    "ignore:StreamingHttpResponse must consume synchronous iterators:Warning"
)


@pytest.fixture(scope="module")
def static_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """STATIC_ROOT after `manage.py collectstatic --no-input` under the production settings."""
    root = tmp_path_factory.mktemp("staticfiles")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(48),
        DJANGO_STATIC_ROOT=str(root),
        PUBLIC_BASE_URL=PUBLIC_BASE_URL,
        TWILIO_AUTH_TOKEN="static-test-auth-token",
        OPENAI_API_KEY="sk-static-test",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return root


def hashed_name(static_root: Path, name: str) -> str:
    """`name` as collectstatic renamed it, from the manifest it wrote."""
    manifest = json.loads((static_root / "staticfiles.json").read_text())
    return str(manifest["paths"][name])


async def asgi_get(
    app: Any, path: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """One GET through an ASGI application: status, headers (lower-case names), body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")]
        + [(k.encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    communicator = ApplicationCommunicator(app, scope)
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(5)
    body = b""
    while True:
        message = await communicator.receive_output(5)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait(5)
    names: Iterable[tuple[bytes, bytes]] = start["headers"]
    return start["status"], {k.decode().lower(): v.decode() for k, v in names}, body


@pytest.fixture
def production_static(settings: Any, static_root: Path) -> Path:
    """Production's static settings (the test run's are development's) on the collected root."""
    settings.DEBUG = False
    settings.STATIC_ROOT = static_root
    settings.STORAGES = production.STORAGES  # dev_settings swaps it in its own namespace only
    del settings.WHITENOISE_USE_FINDERS
    del settings.WHITENOISE_AUTOREFRESH
    # As production runs behind its TLS proxy (http would be redirected).
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    return static_root


async def test_hashed_admin_css_is_served_cacheable_for_ever_and_gzipped(
    production_static: Path,
) -> None:
    url = staticfiles_storage.url(CSS)  # the URL the admin's pages link to
    assert url == "/static/" + hashed_name(production_static, CSS)
    original = (production_static / hashed_name(production_static, CSS)).read_bytes()
    app = get_asgi_application()

    status, headers, body = await asgi_get(app, url, {**VIA_PROXY, "accept-encoding": "gzip"})
    assert status == 200
    assert FOR_EVER in headers["cache-control"]
    assert "immutable" in headers["cache-control"]
    assert headers["content-encoding"] == "gzip"
    assert "accept-encoding" in headers["vary"].lower()
    assert gzip.decompress(body) == original

    status, headers, body = await asgi_get(app, url, VIA_PROXY)
    assert status == 200
    assert "content-encoding" not in headers
    assert body == original

    # The unhashed name still answers, but may change under it: a short cache.
    status, headers, _ = await asgi_get(app, "/static/" + CSS, VIA_PROXY)
    assert status == 200
    assert FOR_EVER not in headers["cache-control"]


@pytest_asyncio.fixture
async def uvicorn_server(static_root: Path, tmp_path: Path) -> AsyncIterator[ServerProcess]:
    """The production server as `make serve` starts it, on the collected STATIC_ROOT."""
    server = ServerProcess(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        realtime_url="ws://127.0.0.1:9/v1",  # never dialled: no call is made
        server="uvicorn",
        env={"DJANGO_STATIC_ROOT": str(static_root)},
    )
    try:
        await server.start()
        yield server
    finally:
        await server.stop()


def http_get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """A GET over a real socket (urllib leaves a gzip body as it came)."""
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()


async def test_uvicorn_serves_the_admin_css_its_login_page_links_to(
    uvicorn_server: ServerProcess, static_root: Path
) -> None:
    base = uvicorn_server.local_base_url
    host = PUBLIC_BASE_URL.removeprefix("https://")
    headers = {**VIA_PROXY, "Host": host, "Accept-Encoding": "gzip"}
    url = "/static/" + hashed_name(static_root, CSS)

    status, _, page = await asyncio.to_thread(http_get, base + "/admin/login/", headers)
    assert status == 200
    assert f'href="{url}"'.encode() in page

    status, css_headers, css = await asyncio.to_thread(http_get, base + url, headers)
    assert status == 200
    assert css_headers["content-encoding"] == "gzip"
    assert FOR_EVER in css_headers["cache-control"]
    assert gzip.decompress(css) == (static_root / hashed_name(static_root, CSS)).read_bytes()
