"""Development settings, chosen explicitly and never by omission.

The developer commands run with DJANGO_SETTINGS_MODULE=config.dev_settings:
`make demo`, `make test`, `make serve-dev`, and pytest (pyproject.toml). They
are production's settings with the development values of `config.mode`
filling in what a developer's machine lacks (anything set in the
environment still wins) and debug on by default.
"""

from config import mode

mode.DEVELOPMENT = True

from config.settings import *  # noqa: E402, F403
