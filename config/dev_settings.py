"""Development settings, chosen explicitly and never by omission.

The developer commands run with DJANGO_SETTINGS_MODULE=config.dev_settings:
`make demo`, `make test`, `make serve-dev`, and pytest (pyproject.toml). They
are production's settings with the development values of `config.mode`
filling in what a developer's machine lacks (anything set in the
environment still wins), debug on by default, and static files served from
the apps as they are, with nothing to collect first.
"""

from config import mode

mode.DEVELOPMENT = True

from config.settings import *  # noqa: E402, F403

# Production's manifest exists only after `collectstatic`; tests (whose debug is
# off) and the demo render the admin without it.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# WhiteNoise finds each file in the apps when it is asked for, instead of listing a
# STATIC_ROOT that development never collects.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
