"""Project settings, read from the environment (12-factor).

Production is the default. With a value a real call needs missing, or left at
a development value, the process refuses to start and names each problem on
a line of its own (`ImproperlyConfigured`). Development values (debug on, a
development secret key and Twilio token, a placeholder OpenAI key for the
stand-ins) come only from `config.dev_settings`, which the developer commands
choose explicitly: `make demo`, `make test`, `make serve-dev`, pytest. Every
variable is documented in `.env.example`.
"""

from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

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

# The public https address Twilio reaches. Signatures are computed by Twilio
# over this URL, never over whatever host a proxy hands us.
PUBLIC_BASE_URL = _required("PUBLIC_BASE_URL", "https://localhost:8000").rstrip("/")
if not DEVELOPMENT and PUBLIC_BASE_URL and not PUBLIC_BASE_URL.startswith("https://"):
    _problems.append(f"PUBLIC_BASE_URL must be an https:// address, not {PUBLIC_BASE_URL!r}")
# The admin's hosts; by default the public host (Twilio's webhooks do not depend on it).
_public_host = urlsplit(PUBLIC_BASE_URL).hostname or "localhost"
ALLOWED_HOSTS = [host for host in env.list("DJANGO_ALLOWED_HOSTS", default=[]) if host] or (
    ["localhost", "127.0.0.1", "[::1]"] if DEVELOPMENT else [_public_host]
)

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

TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
# Validates every webhook's and stream's signature.
TWILIO_AUTH_TOKEN = _required("TWILIO_AUTH_TOKEN", mode.DEVELOPMENT_TWILIO_AUTH_TOKEN)
if not DEVELOPMENT and TWILIO_AUTH_TOKEN == mode.DEVELOPMENT_TWILIO_AUTH_TOKEN:
    _problems.append("TWILIO_AUTH_TOKEN is the development token published in the repository")
# Base URL of Twilio's REST API; only simulators and tests change it.
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="")
# Lifetime of the per-call token carried from the webhook to the media stream.
STREAM_TOKEN_TTL_S = env.int("STREAM_TOKEN_TTL_S", default=60)
# Liveness: each process marks its calls alive this often; a streaming call not
# marked for CALL_LOST_AFTER_S lost its process and is ended (server_lost).
CALL_ALIVE_INTERVAL_S = env.float("CALL_ALIVE_INTERVAL_S", default=5.0)
CALL_LOST_AFTER_S = env.float("CALL_LOST_AFTER_S", default=30.0)
# On SIGTERM (a deploy), each call is handed over at its next pause, or after this
# many seconds at the latest; 0 hands them over at once (calls.live.handover).
CALL_HANDOVER_GRACE_S = env.float("CALL_HANDOVER_GRACE_S", default=0.0 if DEVELOPMENT else 5.0)
# A media stream that has not sent its `start` this long after the handshake is closed.
STREAM_START_TIMEOUT_S = env.float("STREAM_START_TIMEOUT_S", default=5.0)

OPENAI_API_KEY = _required("OPENAI_API_KEY", mode.DEVELOPMENT_OPENAI_API_KEY)
# Unset: OpenAI's own endpoint. The SDK appends /realtime to this.
OPENAI_WEBSOCKET_BASE_URL = env.str("OPENAI_WEBSOCKET_BASE_URL", default="") or None
OPENAI_REALTIME_MODEL = env.str("OPENAI_REALTIME_MODEL", default="gpt-realtime")
OPENAI_VOICE = env.str("OPENAI_VOICE", default="marin")
OPENAI_VAD_THRESHOLD = env.float("OPENAI_VAD_THRESHOLD", default=0.5)
OPENAI_VAD_PREFIX_PADDING_MS = env.int("OPENAI_VAD_PREFIX_PADDING_MS", default=300)
OPENAI_VAD_SILENCE_DURATION_MS = env.int("OPENAI_VAD_SILENCE_DURATION_MS", default=500)
# The caller's words, transcribed by the service: kept with the call, and what a
# replacement session is told the caller said (empty: no transcription).
OPENAI_INPUT_TRANSCRIPTION_MODEL = env.str(
    "OPENAI_INPUT_TRANSCRIPTION_MODEL", default="gpt-4o-mini-transcribe"
)
# The voice webhook opens the call's model session while Twilio connects the
# media stream (calls.live.preopen): the stream's `start` finds it ready. One
# not taken by a stream in this process within MODEL_PREOPEN_S is closed (with
# several workers behind one address, a stream may land on another); at most
# MODEL_PREOPEN_MAX wait at once. 0 s: sessions are opened at `start` only, the
# default when `make serve` runs several workers (SERVE_WORKERS): a stream then
# reaches the worker that opened its session only 1 time in SERVE_WORKERS.
SERVE_WORKERS = env.int("SERVE_WORKERS", default=1)
MODEL_PREOPEN_S = env.float("MODEL_PREOPEN_S", default=10.0 if SERVE_WORKERS <= 1 else 0.0)
MODEL_PREOPEN_MAX = env.int("MODEL_PREOPEN_MAX", default=200)
# A model that does not start an answer that is due, or stops producing one, this
# long is replaced by a new session (the conversation carried over); so is one
# whose socket closes while the caller is on the line. At most this many per call,
# then the caller is told and the call ends (`model_unresponsive`).
MODEL_RESPONSE_TIMEOUT_MS = env.int("MODEL_RESPONSE_TIMEOUT_MS", default=5000)
MODEL_MAX_RECOVERIES = env.int("MODEL_MAX_RECOVERIES", default=2)
# Keepalive pings on the model's socket: one that stops answering is closed (and
# replaced) within interval + timeout.
MODEL_PING_INTERVAL_S = env.float("MODEL_PING_INTERVAL_S", default=5.0)
MODEL_PING_TIMEOUT_S = env.float("MODEL_PING_TIMEOUT_S", default=5.0)
# What the caller hears when the bridge cannot go on (the model unreachable, a fault).
CALL_APOLOGY = env.str("CALL_APOLOGY", default="") or (
    "Sorry, we are having technical difficulties. Please call again later. Goodbye."
)
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
# Pacing keeps at most PLAYOUT_LEAD_MS of unplayed audio at Twilio and tops it up
# PLAYOUT_REFILL_MS at a time (a wake-up per refill, not per frame), so Twilio holds at
# least LEAD - REFILL (200 ms) while an answer plays. Each refill goes as one media
# message, and a mark follows every PLAYOUT_MARK_INTERVAL_MS: at 200 / 200 / 200 an
# answer costs a media message, a mark and an echo per 200 ms. Measured against
# 300 / 100 / 100 (benchmarks/bench_calls.py, one core): 5-8% less server CPU at 100
# and 200 calls, 0 underruns at 200 calls, and no larger truncation error over
# jittery links (benchmarks/bench_links.py). An earlier 300 / 200 kept only 100 ms in
# hand, and 200 calls left callers 4-7 ms gaps a second into answers.
PLAYOUT_LEAD_MS = env.int("PLAYOUT_LEAD_MS", default=400)
PLAYOUT_REFILL_MS = env.int("PLAYOUT_REFILL_MS", default=200)
# A run of AI audio into a player that ran dry (an answer's first words) starts
# once this much is held, or its first audio has waited PLAYOUT_START_HOLD_MS:
# the model's deltas are uneven, and a short first one sent on at once can play
# out before the next arrives (a gap the caller hears). It costs an answer at
# most that much latency, and nothing when its first delta is long enough.
PLAYOUT_START_HOLD_MS = env.int("PLAYOUT_START_HOLD_MS", default=20)
PLAYOUT_START_FILL_MS = env.int("PLAYOUT_START_FILL_MS", default=100)
# A mark (the evidence of what the caller heard) follows at least every this much
# audio sent to Twilio, and the end of each item; the paced estimate covers between.
PLAYOUT_MARK_INTERVAL_MS = env.int("PLAYOUT_MARK_INTERVAL_MS", default=200)
# The most audio one media message to Twilio carries (a refill goes as one message).
TWILIO_MEDIA_MESSAGE_MS = env.int("TWILIO_MEDIA_MESSAGE_MS", default=200)
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

# Retention (the superuser's admin action) never deletes a call that ended more recently.
CALL_RETENTION_MIN_DAYS = env.int("CALL_RETENTION_MIN_DAYS", default=30)

# Where reviewers open the admin: drain_diagnostics prints its call links against it
# (empty: links are paths).
REVIEW_BASE_URL = env.str("REVIEW_BASE_URL", default="").rstrip("/")

if _problems:
    raise ImproperlyConfigured(
        "refusing to start in production (set these, or run the developer commands, which "
        "use config.dev_settings):\n" + "\n".join(f"  - {problem}" for problem in _problems)
    )
