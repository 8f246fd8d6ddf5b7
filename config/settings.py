"""Project settings, read from the environment (12-factor).

Production is the default. With a value a real call needs missing, or left at
a development value, the process refuses to start and names each problem on
a line of its own (`ImproperlyConfigured`). Development values (debug on, a
development secret key and Twilio token, a placeholder OpenAI key for the
stand-ins) come only from `config.dev_settings`, which the developer commands
choose explicitly: `make demo`, `make test`, `make serve-dev`, pytest. Every
variable is documented in `.env.example`.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

from calls.conf import from_strings
from calls.conf import problems as callbridge_problems
from config import mode

BASE_DIR = Path(__file__).resolve().parent.parent
DEVELOPMENT = mode.DEVELOPMENT

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# What production refuses to start with, one line each (raised at the end).
_problems: list[str] = []


def _required(name: str, development_value: str) -> str:
    """An environment value production cannot do without; development fills it in."""
    value = env.str(name, default="")
    if value:
        return value
    if DEVELOPMENT:
        return development_value
    _problems.append(f"{name} is not set")
    return ""


DEBUG = env.bool("DJANGO_DEBUG", default=DEVELOPMENT)
SECRET_KEY = _required("DJANGO_SECRET_KEY", mode.DEVELOPMENT_SECRET_KEY)
if not DEVELOPMENT and SECRET_KEY:
    if SECRET_KEY == mode.DEVELOPMENT_SECRET_KEY:
        _problems.append("DJANGO_SECRET_KEY is the development key published in the repository")
    elif len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        _problems.append("DJANGO_SECRET_KEY is too weak: at least 50 characters, 5 different")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "calls",
    # The reference host's own app: its customers choose the agent, its tools serve it.
    "shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The collected static files (the admin's CSS and JS), answered before the rest of
    # the stack. Twilio's webhooks never pass here (`calls.frontdoor.handler`).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url_config(
        env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
    ),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DJANGO_CONN_MAX_AGE", default=0))
# No query may hang a thread: a call's start waits on the database (its claim),
# and the record writer must notice an outage and come back for its rows.
DATABASE_STATEMENT_TIMEOUT_MS = env.int("DATABASE_STATEMENT_TIMEOUT_MS", default=5000)
DATABASE_CONNECT_TIMEOUT_S = env.int("DATABASE_CONNECT_TIMEOUT_S", default=5)
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options.setdefault("connect_timeout", DATABASE_CONNECT_TIMEOUT_S)
    options.setdefault(
        "options",
        f"-c statement_timeout={DATABASE_STATEMENT_TIMEOUT_MS} "
        f"-c lock_timeout={DATABASE_STATEMENT_TIMEOUT_MS}",
    )
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The simulated stack runs the server in a child process on the same file:
    # wait for each other's writes, and keep the test database in a file too.
    options = DATABASES["default"].setdefault("OPTIONS", {})
    # How long a statement waits for another connection's write lock.
    options.setdefault("timeout", DATABASE_STATEMENT_TIMEOUT_MS / 1000)
    # Take the write lock when a transaction begins: a read-then-write
    # transaction otherwise fails at once with "database is locked" when
    # another connection writes, whatever the timeout.
    options.setdefault("transaction_mode", "IMMEDIATE")
    # WAL: readers (the admin, the stream claims) never wait for the record
    # writer, and a commit appends to the log instead of rewriting pages.
    # synchronous=NORMAL is safe with WAL: a power cut may lose the last
    # commits, never corrupt the file; a crashed process loses nothing.
    options.setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL")
    # TEST_DATABASE_NAME: a test database of its own, for a second test run at once.
    DATABASES["default"]["TEST"] = {
        "NAME": env.str("TEST_DATABASE_NAME", default="") or str(BASE_DIR / ".test-db.sqlite3")
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Static files: `collectstatic` (run by `make serve`) copies them to STATIC_ROOT under
# content-hashed names, with gzip copies, and WhiteNoise serves them from there, the
# hashed ones cacheable for ever. Without that step the admin's pages fail to render.
# Development serves the apps' files as they are (`config.dev_settings`).
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default="") or BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

if not DEBUG:
    # Behind a TLS-terminating proxy that says so in X-Forwarded-Proto (and strips
    # that header from what clients send).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# --- The call platform -------------------------------------------------------
# Its settings live in one namespace, CALLBRIDGE (every key, default and range:
# calls/conf.py, and the README's table). This host fills it from the environment,
# every key under its own name; a value that does not parse is named below.

CALLBRIDGE = from_strings(os.environ)
# The shop's hooks choose each call's agent by the caller's number (`shop/agents.py`).
CALLBRIDGE.setdefault("AGENT_HOOKS", "shop.agents.ShopHooks")
if DEVELOPMENT:
    CALLBRIDGE.setdefault("PUBLIC_BASE_URL", "https://localhost:8000")
    CALLBRIDGE.setdefault("TWILIO_AUTH_TOKEN", mode.DEVELOPMENT_TWILIO_AUTH_TOKEN)
    CALLBRIDGE.setdefault("OPENAI_API_KEY", mode.DEVELOPMENT_OPENAI_API_KEY)
    # A developer's restart hands calls over at once.
    CALLBRIDGE.setdefault("CALL_HANDOVER_GRACE_S", 0.0)
elif CALLBRIDGE.get("TWILIO_AUTH_TOKEN") == mode.DEVELOPMENT_TWILIO_AUTH_TOKEN:
    _problems.append("TWILIO_AUTH_TOKEN is the development token published in the repository")

# The admin's hosts; by default the public host (Twilio's webhooks do not depend on it).
_public_host = urlsplit(str(CALLBRIDGE.get("PUBLIC_BASE_URL", ""))).hostname or "localhost"
ALLOWED_HOSTS = [host for host in env.list("DJANGO_ALLOWED_HOSTS", default=[]) if host] or (
    ["localhost", "127.0.0.1", "[::1]"] if DEVELOPMENT else [_public_host]
)
# The voice webhook opens the call's model session while Twilio connects the
# stream; with several workers behind one address (`make serve`'s SERVE_WORKERS)
# a stream reaches the worker that opened its session only 1 time in
# SERVE_WORKERS, so sessions then open at the stream's `start`.
SERVE_WORKERS = env.int("SERVE_WORKERS", default=1)
if SERVE_WORKERS > 1:
    CALLBRIDGE.setdefault("MODEL_PREOPEN_S", 0.0)
# The platform's own validation (the system checks' and the servers'), at start-up.
_problems += [problem.line() for problem in callbridge_problems(CALLBRIDGE, debug=DEBUG)]

# --- Logging -----------------------------------------------------------------

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="text")  # "text" or "json"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"call_context": {"()": "calls.live.logcontext.CallContextFilter"}},
    "formatters": {
        "text": {
            "format": (
                "%(asctime)s %(levelname)s %(name)s [%(call_sid)s %(stream_sid)s] %(message)s"
            ),
        },
        "json": {"()": "calls.live.logcontext.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["call_context"],
            "formatter": "json" if LOG_FORMAT == "json" else "text",
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"level": "INFO", "propagate": True},
        "daphne": {"level": "WARNING", "propagate": True},
        "websockets": {"level": "WARNING", "propagate": True},
        "openai": {"level": "WARNING", "propagate": True},
        "httpx": {"level": "WARNING", "propagate": True},
    },
}

if _problems:
    raise ImproperlyConfigured(
        "refusing to start in production (set these, or run the developer commands, which "
        "use config.dev_settings):\n" + "\n".join(f"  - {problem}" for problem in _problems)
    )
