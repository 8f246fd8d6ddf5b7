"""The HTTP handler for Twilio's webhooks: Django's request and response, none of its middleware.

Twilio's requests are signed machine calls (`calls.frontdoor.signatures`):
sessions, authentication, CSRF, messages and clickjacking protection serve
people in browsers and do nothing for them. Under ASGI each of those
middlewares also costs two hops to a thread per request, which made a burst
of a hundred incoming calls wait seconds for their TwiML. The admin keeps
the full stack (`settings.MIDDLEWARE`); `calls.routing.front_door_routes` sends
Twilio's three webhooks, and nothing else, here.

What is left of Django's synchronous work per request (the request signals,
closing the response) runs on one thread kept for the front door. Django's
own handler starts a thread for each request and another to join it, and
the event loop waits for each to start: twice per incoming call, in the very
burst in which calls are set up. The views touch the database only through
the call path's threads (`calls.live.db`), so no request needs a thread of
its own.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response


class FrontDoorHandler(ASGIHandler):  # type: ignore[misc]  # Django is untyped
    """`ASGIHandler` with an empty middleware stack and one kept thread for its sync work."""

    def __init__(self) -> None:
        super().__init__()
        # One call at a time, as a thread-sensitive context requires.
        self._sync_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="front-door")

    def load_middleware(self, is_async: bool = False) -> None:
        # What `MIDDLEWARE = []` would build.
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        get_response = self._get_response_async if is_async else self._get_response
        self._middleware_chain = convert_exception_to_response(get_response)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"the front door serves HTTP only, not {scope['type']}")
        async with ThreadSensitiveContext(executor=self._sync_thread):
            await self.handle(scope, receive, send)
