"""Solaris settings: one file, driven by environment variables (see README, "Configuration").

With no environment at all Solaris runs embedded: SQLite, local-memory cache, eager Celery and
console e-mail. DATABASE_URL, REDIS_URL and EMAIL_URL switch each part to its production service.
"""

from pathlib import Path

import environ
from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from kernel.client_ip import networks_parse
from kernel.throttle import rate_parse

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

DATABASE_URL = env.str("DATABASE_URL", default="")
REDIS_URL = env.str("REDIS_URL", default="")
EMBEDDED = not DATABASE_URL

# The embedded default is a developer's machine; a configured database means production.
DEBUG = env.bool("DEBUG", default=EMBEDDED)

PLACEHOLDER_SECRET_KEY = "insecure-solaris-placeholder-change-me"
SECRET_KEY = env.str("SECRET_KEY", default=PLACEHOLDER_SECRET_KEY)
if SECRET_KEY == PLACEHOLDER_SECRET_KEY and not DEBUG:
    raise ImproperlyConfigured("SECRET_KEY must be set to a random value when DEBUG is off.")
# Signed sessions, password reset links and CSRF tokens are only as strong as the key: the rule of
# Django's own deployment check (security.W009), refused at start instead of warned about.
if not DEBUG and (
    len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH
    or len(set(SECRET_KEY)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
    or SECRET_KEY.startswith(SECRET_KEY_INSECURE_PREFIX)
):
    raise ImproperlyConfigured(
        f"SECRET_KEY is too weak for DEBUG off: use at least {SECRET_KEY_MIN_LENGTH} random "
        f"characters, at least {SECRET_KEY_MIN_UNIQUE_CHARACTERS} of them different, e.g. "
        "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'."
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_ratelimit",
    "accounts",
    "credits",
    "proxy",
    "backoffice",
    "notifications",
    "payments",
    "portal",
    "monitoring",
]

MIDDLEWARE = [
    "kernel.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "kernel.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "solaris.urls"
WSGI_APPLICATION = "solaris.wsgi.application"
ASGI_APPLICATION = "solaris.asgi.application"

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

# Database: PostgreSQL is the source of truth in production; SQLite for the embedded default.
if DATABASE_URL:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env.str("SQLITE_PATH", default=str(BASE_DIR / "db.sqlite3")),
            # IMMEDIATE makes a write transaction take the lock up front: no "database is locked"
            # upgrade failures when two requests spend at once.
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
            "KEY_PREFIX": "solaris",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # The embedded default serves from one process, so its local-memory cache is the one every
    # throttle counts in; django-ratelimit's check asks for a cache shared by processes (Redis).
    SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/entrar/"
LOGIN_REDIRECT_URL = "/conta/"
LOGOUT_REDIRECT_URL = "/entrar/"

LANGUAGE_CODE = "pt-br"
LANGUAGES = [("pt-br", _("Portuguese (Brazil)")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="America/Sao_Paulo")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
# The ASGI app serves /static/ itself unless a reverse proxy does it (SOLARIS_SERVE_STATIC=false).
SOLARIS_SERVE_STATIC = env.bool("SOLARIS_SERVE_STATIC", default=True)

# E-mail: console in the embedded default, SMTP (or any backend URL) with EMAIL_URL.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="IA SOLARIS <nao-responda@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# An unresponsive SMTP server must not hold a worker (or an eager request) for long.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)

# Celery: Redis broker in production; eager, in-process tasks when there is no Redis.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
    "socket_connect_timeout": 2,
    "socket_timeout": 3,
}
# A dead broker must not hold up the credit change that enqueues: fail fast, the outbox sweep retries.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TIMEZONE = TIME_ZONE
# How often beat runs the ledger check (monitoring.tasks.check_ledger; the metric and alert read it).
SOLARIS_LEDGER_CHECK_SECONDS = env.int("SOLARIS_LEDGER_CHECK_SECONDS", default=3600)
CELERY_BEAT_SCHEDULE = {
    "renew-cycles": {"task": "credits.tasks.renew_cycles", "schedule": 300.0},
    "expire-grants": {"task": "credits.tasks.expire_grants", "schedule": 300.0},
    "reap-holds": {"task": "credits.tasks.reap_holds", "schedule": 60.0},
    "sweep-notifications": {"task": "notifications.tasks.sweep_notifications", "schedule": 60.0},
    "check-ledger": {
        "task": "monitoring.tasks.check_ledger",
        "schedule": float(SOLARIS_LEDGER_CHECK_SECONDS),
    },
    "reconcile-payments": {"task": "payments.tasks.reconcile_payments", "schedule": 60.0},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "credits.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "kernel.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "kernel.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Solaris API",
    "DESCRIPTION": "Credit-control gateway of IA SOLARIS.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the bundled sidecar files: no CDN, works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # A purchase's choices appear in several components (the purchase, the refunded purchase).
    "ENUM_NAME_OVERRIDES": {
        "PurchaseStatusEnum": "credits.models.Purchase.Status",
        "PurchaseMethodEnum": "credits.models.Purchase.Method",
    },
}

# Solaris itself.
LITELLM_BASE_URL = env.str("LITELLM_BASE_URL", default="").rstrip("/")
LITELLM_API_KEY = env.str("LITELLM_API_KEY", default="")
SOLARIS_PUBLIC_URL = env.str("SOLARIS_PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")
SOLARIS_PURCHASE_EMAIL = env.str("SOLARIS_PURCHASE_EMAIL", default="compras@localhost")
SOLARIS_ALERT_THRESHOLD = env.int("SOLARIS_ALERT_THRESHOLD", default=80)
# Grants above this many credits, asked for in admin or the admin API, wait for a second staff
# member's approval (docs/admin.md); unset: no approval step. The CLI is never held.
SOLARIS_GRANT_APPROVAL_ABOVE = env.int("SOLARIS_GRANT_APPROVAL_ABOVE", default=None)
if SOLARIS_GRANT_APPROVAL_ABOVE is not None and SOLARIS_GRANT_APPROVAL_ABOVE < 0:
    raise ImproperlyConfigured(
        "SOLARIS_GRANT_APPROVAL_ABOVE must be a number of credits, 0 or more."
    )
# Notification delivery (docs/notifications.md): attempts, backoff, lease and sweep delay.
SOLARIS_NOTIFICATION_MAX_ATTEMPTS = env.int("SOLARIS_NOTIFICATION_MAX_ATTEMPTS", default=8)
SOLARIS_NOTIFICATION_RETRY_SECONDS = env.int("SOLARIS_NOTIFICATION_RETRY_SECONDS", default=30)
SOLARIS_NOTIFICATION_RETRY_MAX_SECONDS = env.int(
    "SOLARIS_NOTIFICATION_RETRY_MAX_SECONDS", default=3600
)
SOLARIS_NOTIFICATION_LEASE_SECONDS = env.int("SOLARIS_NOTIFICATION_LEASE_SECONDS", default=120)
SOLARIS_NOTIFICATION_SWEEP_AFTER_SECONDS = env.int(
    "SOLARIS_NOTIFICATION_SWEEP_AFTER_SECONDS", default=180
)
SOLARIS_HOLD_MAX_AGE_SECONDS = env.int("SOLARIS_HOLD_MAX_AGE_SECONDS", default=900)
# PostgreSQL: admit, settle and release common calls in one SQL function call (docs/credits.md).
SOLARIS_SQL_FAST_PATH = env.bool("SOLARIS_SQL_FAST_PATH", default=True)
# The smallest answer worth admitting when max_tokens has to be lowered to fit the balance.
SOLARIS_MIN_ANSWER_TOKENS = env.int("SOLARIS_MIN_ANSWER_TOKENS", default=256)
# An account is blocked when it cannot pay a prompt this long plus the smallest answer above, on
# the cheapest model its plan allows (docs/credits.md).
SOLARIS_BLOCKED_PROMPT_TOKENS = env.int("SOLARIS_BLOCKED_PROMPT_TOKENS", default=200)
SOLARIS_UPSTREAM_CONNECT_TIMEOUT = env.float("SOLARIS_UPSTREAM_CONNECT_TIMEOUT", default=5.0)
SOLARIS_UPSTREAM_FIRST_BYTE_TIMEOUT = env.float(
    "SOLARIS_UPSTREAM_FIRST_BYTE_TIMEOUT", default=120.0
)
SOLARIS_UPSTREAM_IDLE_TIMEOUT = env.float("SOLARIS_UPSTREAM_IDLE_TIMEOUT", default=60.0)
SOLARIS_MAX_BODY_BYTES = env.int("SOLARIS_MAX_BODY_BYTES", default=4 * 1024 * 1024)
# Request fields forwarded to LiteLLM beyond OpenAI's chat parameters (docs/proxy.md); never
# LiteLLM's own routing, retry, credential or mock fields.
SOLARIS_EXTRA_PARAMS = [name.strip() for name in env.list("SOLARIS_EXTRA_PARAMS", default=[])]
SOLARIS_UPSTREAM_MAX_CONNECTIONS = env.int("SOLARIS_UPSTREAM_MAX_CONNECTIONS", default=1000)
# At shutdown, how long to wait for settlements still running (after the open requests ended).
SOLARIS_SHUTDOWN_SETTLE_SECONDS = env.float("SOLARIS_SHUTDOWN_SETTLE_SECONDS", default=30.0)
# Circuit breaker: this many upstream failures within the window open it for OPEN_SECONDS.
SOLARIS_CIRCUIT_FAILURES = env.int("SOLARIS_CIRCUIT_FAILURES", default=5)
SOLARIS_CIRCUIT_WINDOW_SECONDS = env.int("SOLARIS_CIRCUIT_WINDOW_SECONDS", default=30)
SOLARIS_CIRCUIT_OPEN_SECONDS = env.int("SOLARIS_CIRCUIT_OPEN_SECONDS", default=15)
# How long a process reuses an all-clear circuit state read from Redis (0: read it on every call).
SOLARIS_CIRCUIT_CLEAR_SECONDS = env.float("SOLARIS_CIRCUIT_CLEAR_SECONDS", default=1.0)
SOLARIS_ALERT_NOTICE = env.bool("SOLARIS_ALERT_NOTICE", default=True)
# Threads (and so database connections) each web process uses for the proxy's ORM work.
SOLARIS_PROXY_DB_THREADS = env.int("SOLARIS_PROXY_DB_THREADS", default=8)
# Seconds the proxy may use a cached key, plan or price (kernel/local_cache.py); 0 = no cache.
SOLARIS_LOOKUP_CACHE_SECONDS = env.float("SOLARIS_LOOKUP_CACHE_SECONDS", default=5.0)
# Multiprocess metrics: each web worker writes its counters there and /metrics adds them up. Read by
# prometheus_client itself from the environment; scripts/serve.sh empties it before the workers start.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
LIBRECHAT_JWT_SECRET = env.str("LIBRECHAT_JWT_SECRET", default="")
SOLARIS_WIDGET_ALLOWED_ORIGINS = env.list("SOLARIS_WIDGET_ALLOWED_ORIGINS", default=[])
# Single-use sign-in links: e-mailed ones live minutes, the widget's are used at once.
SOLARIS_LOGIN_LINK_TTL_MINUTES = env.int("SOLARIS_LOGIN_LINK_TTL_MINUTES", default=15)
SOLARIS_WIDGET_LINK_TTL_SECONDS = env.int("SOLARIS_WIDGET_LINK_TTL_SECONDS", default=120)


def _checked(name: str, parse, value):
    """`value` if `parse` accepts it; else refuse to start, naming the setting."""
    try:
        parse(value)
    except ValueError as error:
        raise ImproperlyConfigured(f"{name}: {error}") from None
    return value


# The reverse proxies whose X-Forwarded-For names the client (kernel/client_ip.py); never trusted
# from anyone else.
SOLARIS_TRUSTED_PROXIES = _checked(
    "SOLARIS_TRUSTED_PROXIES",
    lambda values: networks_parse(values, setting="SOLARIS_TRUSTED_PROXIES"),
    env.list("SOLARIS_TRUSTED_PROXIES", default=[]),
)
# Throttles (kernel/throttle.py, docs/security.md): "N/period", counted per who and client address;
# reaching N locks that pair out for one period.
SOLARIS_THROTTLE_SIGN_IN = _checked(
    "SOLARIS_THROTTLE_SIGN_IN", rate_parse, env.str("SOLARIS_THROTTLE_SIGN_IN", default="10/15m")
)
SOLARIS_THROTTLE_EMAIL = _checked(
    "SOLARIS_THROTTLE_EMAIL", rate_parse, env.str("SOLARIS_THROTTLE_EMAIL", default="5/h")
)
SOLARIS_THROTTLE_REQUESTS = _checked(
    "SOLARIS_THROTTLE_REQUESTS", rate_parse, env.str("SOLARIS_THROTTLE_REQUESTS", default="30/h")
)
# /metrics (monitoring/views.py): a bearer token, or client addresses, allowed to read it. With
# neither it is open in DEBUG (the embedded default) and closed otherwise.
SOLARIS_METRICS_TOKEN = env.str("SOLARIS_METRICS_TOKEN", default="")
SOLARIS_METRICS_ALLOWED_IPS = _checked(
    "SOLARIS_METRICS_ALLOWED_IPS",
    lambda values: networks_parse(values, setting="SOLARIS_METRICS_ALLOWED_IPS"),
    env.list("SOLARIS_METRICS_ALLOWED_IPS", default=[]),
)
# PIX through Mercado Pago (docs/payments.md); without the access token purchases stay manual.
MERCADOPAGO_ACCESS_TOKEN = env.str("MERCADOPAGO_ACCESS_TOKEN", default="")
MERCADOPAGO_WEBHOOK_SECRET = env.str("MERCADOPAGO_WEBHOOK_SECRET", default="")
MERCADOPAGO_API_BASE = env.str(
    "MERCADOPAGO_API_BASE", default="https://api.mercadopago.com"
).rstrip("/")
MERCADOPAGO_TIMEOUT_SECONDS = env.float("MERCADOPAGO_TIMEOUT_SECONDS", default=10.0)
# Mercado Pago accepts a PIX lifetime from 30 minutes to 30 days.
MERCADOPAGO_PIX_EXPIRATION_MINUTES = env.int("MERCADOPAGO_PIX_EXPIRATION_MINUTES", default=30)
MERCADOPAGO_WEBHOOK_TOLERANCE_SECONDS = env.int(
    "MERCADOPAGO_WEBHOOK_TOLERANCE_SECONDS", default=300
)

# dictConfig, then the secret filter on the web server's own loggers (kernel/logging.py).
LOGGING_CONFIG = "kernel.logging.logging_configure"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "kernel.logging.RequestIdFilter"}},
    "formatters": {"json": {"()": "kernel.logging.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Only through the JSON handler: Django's own (plain text in DEBUG, mail to ADMINS) would
        # print request paths unmasked.
        "django": {"handlers": [], "level": "INFO"},
        "django.server": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips the client's): only when
# said so, otherwise any caller could claim https.
if env.bool("SOLARIS_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# HSTS (sent on https requests only): on by default when the public address is https.
SECURE_HSTS_SECONDS = env.int(
    "SECURE_HSTS_SECONDS",
    default=31_536_000 if SOLARIS_PUBLIC_URL.startswith("https://") else 0,
)
