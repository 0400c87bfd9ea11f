"""Settings for the live-chat monolith, driven by the environment.

Every variable is optional: unset, the embedded defaults apply (SQLite under var/, the in-memory channel
layer, eager Celery, console e-mail), so `make run` works on a bare laptop. With DATABASE_URL and
REDIS_URL the same code runs on PostgreSQL, channels-redis and a Celery worker.
"""
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()


def _setting(name: str, parse):
    """Parse one variable; a bad value stops start-up with one line naming it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # django-environ warns before failing; the one line below says it
            return parse()
    except (ImproperlyConfigured, ValueError, KeyError) as error:
        raise ImproperlyConfigured(f"{name} is not valid: {error}") from None


# ------------------------------------------------------------------------------ core

DEBUG = _setting("DEBUG", lambda: env.bool("DEBUG", default=False))

# The key signs sessions, CSRF tokens and password-reset links: one that is known lets anyone forge them. With DEBUG
# off, start-up refuses a missing, short or published one. `make run` writes a random one into var/secret_key on
# its first run (never committed, never baked into an image), so a fresh clone needs no environment; nothing
# else creates that file, so a server without SECRET_KEY and without that file does not start.
DEV_SECRET_KEY = "dev-only-insecure-key-change-me-in-production"  # DEBUG on, nothing else given
KNOWN_SECRET_KEYS = {DEV_SECRET_KEY, "change-me-in-production", "change-me", "secret", "changeme"}
SECRET_KEY_MIN_LENGTH = 50  # what `check --deploy` asks for
SECRET_KEY_FILE = Path(env.str("SECRET_KEY_FILE", default=str(VAR_DIR / "secret_key")))  # or a Docker secret


def _secret_key() -> str:
    key = env.str("SECRET_KEY", default="").strip()
    source = "SECRET_KEY"
    if not key and SECRET_KEY_FILE.is_file():
        key, source = SECRET_KEY_FILE.read_text().strip(), str(SECRET_KEY_FILE)
    if DEBUG:
        return key or DEV_SECRET_KEY
    how = "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"
    if not key:
        raise ValueError(f"it is required when DEBUG is off; {how}")
    if key in KNOWN_SECRET_KEYS or key.startswith("django-insecure-"):
        raise ValueError(f"{source} holds a published default key; {how}")
    if len(key) < SECRET_KEY_MIN_LENGTH or len(set(key)) < 5:
        raise ValueError(f"{source} is shorter than {SECRET_KEY_MIN_LENGTH} characters or too repetitive; {how}")
    return key


SECRET_KEY = _setting("SECRET_KEY", _secret_key)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
HOST = env.str("HOST", default="127.0.0.1")
PORT = _setting("PORT", lambda: env.int("PORT", default=8000))
PUBLIC_URL = env.str("PUBLIC_URL", default=f"http://{HOST}:{PORT}").rstrip("/")
if (_public_host := urlsplit(PUBLIC_URL).hostname) and _public_host not in ALLOWED_HOSTS:
    ALLOWED_HOSTS.append(_public_host)  # the server always answers at its own public address
DEMO_EXTRA_ORIGINS = env.list("DEMO_EXTRA_ORIGINS", default=[])

# ------------------------------------------------------------------------------ TLS

# Served over HTTPS (PUBLIC_URL says https://), cookies only travel encrypted, plain HTTP is redirected and browsers
# are told to stay on HTTPS (HSTS). Behind a TLS proxy, SECURE_PROXY_SSL_HEADER names the header it sets, e.g.
# `X-Forwarded-Proto: https`; set it only if the proxy always overwrites that header (else a client could forge it).
# Each default can be overridden from the environment; over plain HTTP (`make run`) they stay off, or logging in
# at http://127.0.0.1:8000 would not work.
_HTTPS = PUBLIC_URL.startswith("https://")


def _proxy_ssl_header() -> tuple[str, str] | None:
    raw = env.str("SECURE_PROXY_SSL_HEADER", default="").strip()
    if not raw:
        return None
    name, separator, value = raw.partition(":")
    if not separator or not name.strip() or not value.strip():
        raise ValueError(f"expected `Header-Name: value`, e.g. `X-Forwarded-Proto: https`, got {raw!r}")
    return "HTTP_" + name.strip().upper().replace("-", "_"), value.strip()


SECURE_PROXY_SSL_HEADER = _setting("SECURE_PROXY_SSL_HEADER", _proxy_ssl_header)
SESSION_COOKIE_SECURE = _setting("SESSION_COOKIE_SECURE", lambda: env.bool("SESSION_COOKIE_SECURE", default=_HTTPS))
CSRF_COOKIE_SECURE = _setting("CSRF_COOKIE_SECURE", lambda: env.bool("CSRF_COOKIE_SECURE", default=_HTTPS))
SECURE_SSL_REDIRECT = _setting("SECURE_SSL_REDIRECT", lambda: env.bool("SECURE_SSL_REDIRECT", default=_HTTPS))
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # probed over plain HTTP from inside the host (compose's healthcheck)
SECURE_HSTS_SECONDS = _setting("SECURE_HSTS_SECONDS",
                               lambda: env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600 if _HTTPS else 0))
SECURE_HSTS_INCLUDE_SUBDOMAINS = _setting("SECURE_HSTS_INCLUDE_SUBDOMAINS",
                                          lambda: env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=_HTTPS))
SECURE_HSTS_PRELOAD = _setting("SECURE_HSTS_PRELOAD", lambda: env.bool("SECURE_HSTS_PRELOAD", default=_HTTPS))

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "channels",
    "advisors",
    "chatbots",
    "conversations",
    "widget",
    "reports",
    "integrations",
    "routing",
    "productivity",
]
# The reports' covering indexes (INCLUDE) are PostgreSQL's; on the embedded SQLite they are plain indexes, as meant.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # After the session and LocaleMiddleware, whose choice it overrides. Sync-only, as every middleware here runs:
    # livechat.handler.OneTripHandler enters the whole chain once, in the request's thread.
    "advisors.middleware.AdvisorLanguageMiddleware",
]

ROOT_URLCONF = "livechat.urls"
ASGI_APPLICATION = "livechat.asgi.application"
APPEND_SLASH = False  # paths are exactly as the contract writes them: no redirects

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# ------------------------------------------------------------------------------ database

# No CONN_MAX_AGE under ASGI (channels #871): every sync_to_async thread would keep its own connection; on
# PostgreSQL a connection pool does that job (below).
DATABASES = {
    "default": _setting(
        "DATABASE_URL", lambda: env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
    )
}
if DATABASES["default"].get("ENGINE") not in ("django.db.backends.postgresql", "django.db.backends.sqlite3"):
    raise ImproperlyConfigured("DATABASE_URL is not valid: expected postgres://user@host:port/name or sqlite:///path")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL and a busy timeout let the dev server's threads write without "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }


def _at_least(minimum: float, value: float) -> float:
    if value < minimum:
        raise ValueError(f"must be at least {minimum}, got {value}")
    return value


# PostgreSQL: a pool of connections shared by the process's threads (psycopg_pool, through Django's "pool"
# option). Opening a connection costs 5-6 ms, more than the work of a message; the sockets' database calls run
# in a thread pool of the same size (livechat/db.py), so each of those threads finds a connection ready.
# A connection is checked as it leaves the pool, so the ones a PostgreSQL restart broke are discarded rather than
# handed out; not when it left the pool within the last second (livechat/pool.py: a round trip per call saved;
# Django's CONN_HEALTH_CHECKS would check every time, so it stays off and livechat/postgresql sets ours). While
# PostgreSQL is down, a call waits DATABASE_POOL_TIMEOUT_S for a connection, then fails like any database error
# (the sender gets `unavailable`, /healthz answers 503).
DATABASE_POOL_MIN_SIZE = _setting("DATABASE_POOL_MIN_SIZE",
                                  lambda: _at_least(0, env.int("DATABASE_POOL_MIN_SIZE", default=2)))
DATABASE_POOL_MAX_SIZE = _setting("DATABASE_POOL_MAX_SIZE",
                                  lambda: _at_least(1, env.int("DATABASE_POOL_MAX_SIZE", default=10)))
DATABASE_POOL_TIMEOUT_S = _setting("DATABASE_POOL_TIMEOUT_S",
                                   lambda: _at_least(0.1, float(env.str("DATABASE_POOL_TIMEOUT_S", default="5"))))
# And a few connections of the event loop's own, for the commonest send (a visitor's text to a live conversation,
# livechat/loop_io.py); 0 sends every write through the threads. A process holds up to POOL_MAX + this.
DATABASE_LOOP_CONNECTIONS = _setting("DATABASE_LOOP_CONNECTIONS",
                                     lambda: _at_least(0, env.int("DATABASE_LOOP_CONNECTIONS", default=4)))
if DATABASE_POOL_MIN_SIZE > DATABASE_POOL_MAX_SIZE:
    raise ImproperlyConfigured(f"DATABASE_POOL_MIN_SIZE is not valid: {DATABASE_POOL_MIN_SIZE} is more than "
                               f"DATABASE_POOL_MAX_SIZE ({DATABASE_POOL_MAX_SIZE})")
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = "livechat.postgresql"  # Django's, with the pool's check of livechat/pool.py
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": DATABASE_POOL_MIN_SIZE,
        "max_size": DATABASE_POOL_MAX_SIZE,
        "timeout": DATABASE_POOL_TIMEOUT_S,
        "name": "default",
    }
    # psycopg prepares a statement a connection has run this many times, for the cursors that bind on the server
    # (livechat/compiled.py's prepared_cursor; Django's own cursors bind on the client and never prepare).
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 5
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ------------------------------------------------------------------------------ redis: layer, cache, broker

REDIS_URL = _setting("REDIS_URL", lambda: env.str("REDIS_URL", default=""))
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL is not valid: expected redis://host:port/db, got {REDIS_URL!r}")

# Processes sharing one Redis for different databases (parallel test workers) keep apart by prefix.
CHANNEL_LAYER_PREFIX = env.str("CHANNEL_LAYER_PREFIX", default="asgi")

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": env.str("CHANNEL_LAYER_BACKEND", default="livechat.layers.BatchingRedisPubSubChannelLayer"),
            # redis-py's asyncio pool refuses a 101st connection at once (MaxConnectionsError: its default bound),
            # and channels_redis's core layer, which CHANNEL_LAYER_BACKEND may name, takes one per command in
            # flight: a thousand sockets joining their groups together closed 4503 by the hundreds (`make bench`,
            # uvicorn-corex1). Redis's own maxclients (10,000) is the bound. The pub/sub layer holds
            # two connections whatever this says.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "max_connections": 10_000}], "prefix": CHANNEL_LAYER_PREFIX},
        }
    }
    # Timeouts: a Redis that accepts and never answers must not hold a rate-limit check (and its thread) forever.
    CACHES = {"default": {"BACKEND": "livechat.cache.RedisCache", "LOCATION": REDIS_URL,
                          "KEY_PREFIX": CHANNEL_LAYER_PREFIX,
                          "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2}}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 300}
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")  # what tasks queue themselves
# Celery beat (the worker runs it: `make worker`, compose): webhook retries due, the nightly retention run (UTC),
# and routing's idle close every minute.
CELERY_BEAT_SCHEDULE = {
    "idle-close": {"task": "routing.tasks.idle_close_sweep", "schedule": 60.0},
    "webhooks-sweep": {"task": "integrations.tasks.webhooks_sweep", "schedule": 30.0},
    "retention-nightly": {"task": "integrations.tasks.retention_run",
                          "schedule": crontab(hour=env.int("RETENTION_HOUR_UTC", default=3), minute=0)},
}

# ------------------------------------------------------------------------------ integrations: webhooks, retention

# A webhook URL that resolves to a private, loopback or link-local address is refused (when saved and at each
# delivery) unless this is on: for a receiver on the same private network, never on a shared host.
WEBHOOK_ALLOW_PRIVATE = _setting("WEBHOOK_ALLOW_PRIVATE", lambda: env.bool("WEBHOOK_ALLOW_PRIVATE", default=False))
WEBHOOK_TIMEOUT_S = _setting("WEBHOOK_TIMEOUT_S", lambda: env.float("WEBHOOK_TIMEOUT_S", default=5.0))
# Retries: after WEBHOOK_RETRY_FIRST_S, doubling (at most an hour apart), until WEBHOOK_RETRY_WINDOW_S has passed.
WEBHOOK_RETRY_WINDOW_S = _setting("WEBHOOK_RETRY_WINDOW_S",
                                  lambda: env.float("WEBHOOK_RETRY_WINDOW_S", default=24 * 3600.0))
WEBHOOK_RETRY_FIRST_S = _setting("WEBHOOK_RETRY_FIRST_S", lambda: env.float("WEBHOOK_RETRY_FIRST_S", default=10.0))
# How long a process trusts what it cached about a site's webhooks (a change in this process applies at once).
WEBHOOK_CONFIG_TTL_S = _setting("WEBHOOK_CONFIG_TTL_S", lambda: env.float("WEBHOOK_CONFIG_TTL_S", default=10.0))
# Deliveries delivered or given up are listed in the admin this many days, then forgotten by the nightly run.
WEBHOOK_LOG_DAYS = _setting("WEBHOOK_LOG_DAYS", lambda: env.int("WEBHOOK_LOG_DAYS", default=30))
RETENTION_BATCH_SIZE = _setting("RETENTION_BATCH_SIZE", lambda: env.int("RETENTION_BATCH_SIZE", default=50))

# ------------------------------------------------------------------------------ auth

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/inbox/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# API tokens (`POST /api/auth/token`) stop working this many days after they were issued (REST and inbox socket).
API_TOKEN_TTL_DAYS = _setting("API_TOKEN_TTL_DAYS", lambda: _at_least(1, env.int("API_TOKEN_TTL_DAYS", default=30)))
# Wrong passwords (login page, admin login, POST /api/auth/token), counted in the shared cache over a window that
# starts at the first failure: past LOGIN_SLOW_AFTER failures for a username each attempt waits 1, 2, 4 … s (at
# most 60) after the last; at LOGIN_FAILURES_PER_USERNAME, or LOGIN_FAILURES_PER_ADDRESS from one address, the
# door answers 429 until the window ends. A successful sign-in clears its username's count, not its address's.
LOGIN_FAILURE_WINDOW_S = _setting("LOGIN_FAILURE_WINDOW_S",
                                  lambda: _at_least(1, env.int("LOGIN_FAILURE_WINDOW_S", default=15 * 60)))
LOGIN_FAILURES_PER_USERNAME = _setting("LOGIN_FAILURES_PER_USERNAME",
                                       lambda: _at_least(1, env.int("LOGIN_FAILURES_PER_USERNAME", default=5)))
LOGIN_FAILURES_PER_ADDRESS = _setting("LOGIN_FAILURES_PER_ADDRESS",
                                      lambda: _at_least(1, env.int("LOGIN_FAILURES_PER_ADDRESS", default=20)))
LOGIN_SLOW_AFTER = _setting("LOGIN_SLOW_AFTER", lambda: _at_least(1, env.int("LOGIN_SLOW_AFTER", default=3)))

# ------------------------------------------------------------------------------ i18n, static, media

# English and French (CONTRACT section 7, "Languages"). The browser's Accept-Language picks one (LocaleMiddleware);
# an advisor's own choice wins over it (advisors.middleware.AdvisorLanguageMiddleware). Catalogues: locale/, compiled
# by `python -m livechat.catalogues` (make run and make test do it); the README says how to add a language.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise serves from the finders; an empty root is enough
# Static files are served by livechat/static.py in front of Django (livechat/asgi.py), with whitenoise's rules:
WHITENOISE_USE_FINDERS = True  # serve static files straight from the apps, no collectstatic step
WHITENOISE_AUTOREFRESH = DEBUG

# ------------------------------------------------------------------------------ e-mail

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Livechat <noreply@livechat.local>")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = _setting("EMAIL_PORT", lambda: env.int("EMAIL_PORT", default=25))

# ------------------------------------------------------------------------------ API

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "livechat.api.AdvisorTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["livechat.renderers.OrjsonRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "livechat.api.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Livechat API",
    "DESCRIPTION": "The widget and inbox APIs of the live-chat contract.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "ENUM_NAME_OVERRIDES": {"MessageKindEnum": ["text", "image", "note", "event"], "ReplyKindEnum": ["text", "note"],
                            "AdvisorStatusEnum": ["online", "away", "offline"], "ChosenStatusEnum": ["online", "away"],
                            "AssignmentEnum": ["manual", "round_robin"],
                            "ConversationStatusEnum": ["bot", "live", "closed"]},
}

# ------------------------------------------------------------------------------ product limits

LIVECHAT = {
    "MESSAGE_MAX_CHARS": 4000,
    "FRAME_MAX_BYTES": 64 * 1024,
    "RATE_LIMIT_COUNT": 20,
    "RATE_LIMIT_WINDOW_S": 10,
    "TYPING_INTERVAL_S": 2,
    "SOCKETS_PER_TOKEN": 10,
    "AUTH_TIMEOUT_S": 10,
    "IMAGE_MAX_BYTES": 10 * 1024 * 1024,
    # Bounds on the work an upload costs, so that every accepted one is answered within 2 s (bench/images.py):
    "IMAGE_MAX_PIXELS": 40_000_000,  # a canvas's area
    "IMAGE_MAX_PIXELS_BY_FORMAT": {"PNG": 24_000_000, "WEBP": 12_000_000},  # slower to decode and encode
    "IMAGE_MAX_FRAMES": 500,  # a GIF with more frames is refused (415), counted without decoding
    "IMAGE_MAX_ANIMATION_PIXELS": 20_000_000,  # canvas area x frames: what decoding a GIF's frames costs
    "INBOX_UPLOADS_PER_MINUTE": env.int("INBOX_UPLOADS_PER_MINUTE", default=30),  # per advisor
    "SESSION_IDLE_S": 30 * 60,
    "SEND_BUFFER_MAX_BYTES": 1024 * 1024,  # unsent bytes a socket may hold before it waits for its client
    "SLOW_CONSUMER_S": 5,  # how long it waits before closing 4008
    "SESSIONS_PER_ADDRESS_PER_MINUTE": env.int("SESSIONS_PER_ADDRESS_PER_MINUTE", default=60),
    # Open inbox sockets per advisor, all processes together: one more closes the oldest (4429). Twenty covers
    # every tab and device a person uses; the cap stops one stolen token from holding thousands of sockets.
    "INBOX_SOCKETS_PER_ADVISOR": _setting("INBOX_SOCKETS_PER_ADVISOR",
                                          lambda: _at_least(1, env.int("INBOX_SOCKETS_PER_ADVISOR", default=20))),
    # Widget sockets per client address that have not sent their auth frame yet (they live AUTH_TIMEOUT_S at most):
    # the excess is closed 4429 at once. Counted in the shared cache, so every web process counts together.
    "UNAUTHENTICATED_SOCKETS_PER_ADDRESS": _setting(
        "UNAUTHENTICATED_SOCKETS_PER_ADDRESS",
        lambda: _at_least(1, env.int("UNAUTHENTICATED_SOCKETS_PER_ADDRESS", default=50))),
    "REMINDER_DELAY_S": env.int("REMINDER_DELAY_S", default=300),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}, "daphne": {"level": "WARNING"}},
}
