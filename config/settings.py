"""Project settings, read from the environment (12-factor).

Every variable is documented in `.env.example`. Defaults are for a developer's
machine: a SQLite file, the in-memory channel layer, debug on. With
`DJANGO_DEBUG` off, `DJANGO_SECRET_KEY` has no default and must be set.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
    SECRET_KEY = "insecure-development-key-change-me"
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

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
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
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
        "DIRS": [BASE_DIR / "templates"],
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
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The simulated stack runs the server in a child process on the same file:
    # wait for each other's writes, and keep the test database in a file too.
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options.setdefault("timeout", 20)
    # Take the write lock when a transaction begins: a read-then-write
    # transaction otherwise fails at once with "database is locked" when
    # another connection writes, whatever the timeout.
    options.setdefault("transaction_mode", "IMMEDIATE")
    # WAL: readers (the admin, the stream claims) never wait for the record
    # writer, and a commit appends to the log instead of rewriting pages.
    # synchronous=NORMAL is safe with WAL: a power cut may lose the last
    # commits, never corrupt the file; a crashed process loses nothing.
    options.setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL")
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / ".test-db.sqlite3")}
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

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# --- The call platform -------------------------------------------------------

# The public https address Twilio reaches. Signatures are computed by Twilio
# over this URL, never over whatever host a proxy hands us.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="https://localhost:8000").rstrip("/")

TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
if not TWILIO_AUTH_TOKEN:
    if not DEBUG:
        raise ImproperlyConfigured("TWILIO_AUTH_TOKEN must be set when DJANGO_DEBUG is off")
    # Development only: the simulators sign with this same token.
    TWILIO_AUTH_TOKEN = "dev-auth-token"
# Base URL of Twilio's REST API; only simulators and tests change it.
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="")
# Lifetime of the per-call token carried from the webhook to the media stream.
STREAM_TOKEN_TTL_S = env.int("STREAM_TOKEN_TTL_S", default=60)

OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
# Unset: OpenAI's own endpoint. The SDK appends /realtime to this.
OPENAI_WEBSOCKET_BASE_URL = env.str("OPENAI_WEBSOCKET_BASE_URL", default="") or None
OPENAI_REALTIME_MODEL = env.str("OPENAI_REALTIME_MODEL", default="gpt-realtime")
OPENAI_VOICE = env.str("OPENAI_VOICE", default="marin")
OPENAI_VAD_THRESHOLD = env.float("OPENAI_VAD_THRESHOLD", default=0.5)
OPENAI_VAD_PREFIX_PADDING_MS = env.int("OPENAI_VAD_PREFIX_PADDING_MS", default=300)
OPENAI_VAD_SILENCE_DURATION_MS = env.int("OPENAI_VAD_SILENCE_DURATION_MS", default=500)
AGENT_INSTRUCTIONS = env.str("AGENT_INSTRUCTIONS", default="") or (
    "You are a friendly phone assistant. Keep answers short. When the caller "
    "says goodbye or asks to end the call, say a brief goodbye and call end_call."
)
# Empty: the AI waits for the caller to speak first.
AGENT_GREETING = env.str("AGENT_GREETING", default="")
# Caller audio goes to the model in appends of this many ms (Twilio's 20 ms frames
# joined): half the messages on the model's socket for 10 ms more on average
# before the model's VAD hears a word. 20 sends every frame as it comes.
UPLINK_CHUNK_MS = env.int("UPLINK_CHUNK_MS", default=40)

PLAYOUT_FRAME_MS = env.int("PLAYOUT_FRAME_MS", default=20)
# Margin past the caller's end of playout (the measured link and its jitter come on top).
PLAYOUT_GRACE_MS = env.int("PLAYOUT_GRACE_MS", default=40)
# The round trip to Twilio's player and its jitter, assumed until a call has measured them.
PLAYOUT_LINK_RTT_PRIOR_MS = env.int("PLAYOUT_LINK_RTT_PRIOR_MS", default=100)
PLAYOUT_LINK_JITTER_PRIOR_MS = env.int("PLAYOUT_LINK_JITTER_PRIOR_MS", default=20)
PLAYOUT_LEAD_MS = env.int("PLAYOUT_LEAD_MS", default=300)
# Pacing refills Twilio's buffer this much at a time (a wake-up per refill, not per frame).
PLAYOUT_REFILL_MS = env.int("PLAYOUT_REFILL_MS", default=100)
# The most audio one media message to Twilio carries (a refill goes as one message).
TWILIO_MEDIA_MESSAGE_MS = env.int("TWILIO_MEDIA_MESSAGE_MS", default=100)
# How long a hangup waits past the estimated end of the goodbye for its final
# mark before it ends the call anyway.
PLAYOUT_DRAIN_MARGIN_MS = env.int("PLAYOUT_DRAIN_MARGIN_MS", default=400)

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
