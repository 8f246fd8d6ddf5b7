"""The HTTP handler for Twilio's webhooks: Django's request and response, none of its middleware.

Twilio's requests are signed machine calls (`calls.frontdoor.signatures`):
sessions, authentication, CSRF, messages and clickjacking protection serve
people in browsers and do nothing for them. Under ASGI each of those
middlewares also costs two hops to a thread per request, which made a burst
of a hundred incoming calls wait seconds for their TwiML. The admin keeps
the full stack (`settings.MIDDLEWARE`); `config.asgi` routes `/twilio/` here.
"""

from __future__ import annotations

from typing import Any

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response


class FrontDoorHandler(ASGIHandler):  # type: ignore[misc]  # Django is untyped
    """`ASGIHandler` with an empty middleware stack (what `MIDDLEWARE = []` would build)."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        get_response = self._get_response_async if is_async else self._get_response
        self._middleware_chain = convert_exception_to_response(get_response)
