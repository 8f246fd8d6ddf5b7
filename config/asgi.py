"""ASGI entry point of the reference host: Django, with the call platform mounted.

The two lines any host adds (`calls.asgi.callbridge_application`), and the
explicit process tuning a production server wants (`tune_process`). In
development the server also serves the admin's static files from the apps,
as runserver does; in production WhiteNoise's middleware serves the
collected STATIC_ROOT (or a proxy in front does, see the README).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from calls.asgi import callbridge_application, tune_process  # noqa: E402

site_app = ASGIStaticFilesHandler(django_asgi_app) if settings.DEBUG else django_asgi_app
application = callbridge_application(site_app)
tune_process()
