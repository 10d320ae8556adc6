"""Settings, all from the environment (see the table in README.md).

Defaults suit the embedded mode (SQLite file and a filesystem Celery broker under var/).
With DEBUG=0 the process refuses to start on an unsafe default and names the variable to set.
"""

from pathlib import Path
from urllib.parse import quote

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from integration_hub.env import (
    email_from_address,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_str,
    mailer_from_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("HUB_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

INSECURE_SECRET_KEY = "insecure-dev-key-do-not-use-in-production"
DEBUG = env_bool("DEBUG", False)  # production unless asked: make demo and make test set 1
SECRET_KEY = env_str("SECRET_KEY", INSECURE_SECRET_KEY)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

if not DEBUG:
    if SECRET_KEY == INSECURE_SECRET_KEY or len(SECRET_KEY) < 32:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set to a random value of at least 32 characters when DEBUG=0"
        )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "ALLOWED_HOSTS must list the host names this hub is served under when DEBUG=0"
        )

INSTALLED_APPS = [
    "integration_hub.admin_apps.HubAdminConfig",  # the admin site, open to the admin role
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc as static files: no CDN
    "django_htmx",
    "integration_hub",
    "tracing",
    "monitoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "integration_hub.middleware.RefuseNul",
    "integration_hub.middleware.DatabaseUnavailable",
    "integration_hub.replica.ReadsFromReplica",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "integration_hub.urls"
WSGI_APPLICATION = "integration_hub.wsgi.application"
ASGI_APPLICATION = "integration_hub.asgi.application"

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
                "integration_hub.context_processors.roles",
            ],
        },
    },
]

# --- Database ------------------------------------------------------------------------------

SQLITE_PATH = VAR_DIR / "hub.sqlite3"
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{SQLITE_PATH}")


def database_from_url(url, variable):
    try:
        db = dj_database_url.parse(url, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))
    except Exception as exc:  # dj_database_url raises bare errors on unknown schemes
        message = f"{variable} is not a database URL we understand: {exc}"
        raise ImproperlyConfigured(message) from exc
    if db["ENGINE"] == "django.db.backends.sqlite3":
        db["CONN_MAX_AGE"] = 0
        db["OPTIONS"] = {
            # WAL lets the web server, the worker and beat read while one writes; writers wait
            # up to 20 s for the lock instead of failing, and take it at BEGIN.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
        }
        db["TEST"] = {"NAME": None}
    elif db["ENGINE"] == "django.db.backends.postgresql":
        # An unreachable server is a 503 within this many seconds (libpq waits at least 2).
        db["OPTIONS"] = {"connect_timeout": env_int("DB_CONNECT_TIMEOUT", 5, minimum=1)}
    return db


DATABASES = {"default": database_from_url(DATABASE_URL, "DATABASE_URL")}
# Optional replica for dashboards and read APIs (integration_hub/replica.py); in tests it
# mirrors the test database.
DATABASE_READ_URL = env_str("DATABASE_READ_URL", "")
if DATABASE_READ_URL:
    DATABASES["replica"] = database_from_url(DATABASE_READ_URL, "DATABASE_READ_URL")
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["integration_hub.replica.ReadReplicaRouter"]
# What a 503 for an unavailable database tells the sender to wait (Retry-After).
DB_RETRY_AFTER_SECONDS = env_int("DB_RETRY_AFTER_SECONDS", 5, minimum=1)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Covering indexes (INCLUDE) let PostgreSQL answer dashboard counts from the index alone;
# SQLite builds the same indexes without the extra columns, which is all the embedded mode needs.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

# --- Celery --------------------------------------------------------------------------------

REDIS_URL = env_str("REDIS_URL", "")
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TIMEZONE = "UTC"
# Recycling, the safety net against slow memory growth of long-lived processes (README,
# "Running in production"): a pool child is replaced after this many tasks, or after a task that
# took its peak RSS past the limit (Celery counts KiB). 0 turns either off.
CELERY_WORKER_MAX_TASKS_PER_CHILD = env_int("CELERY_MAX_TASKS_PER_CHILD", 40, minimum=0) or None
CELERY_WORKER_MAX_MEMORY_PER_CHILD = (
    env_int("CELERY_MAX_MEMORY_PER_CHILD_MB", 512, minimum=0) * 1024 or None
)

# --- Email ---------------------------------------------------------------------------------

# EMAIL_URL wins; otherwise the usual EMAIL_* variables describe an SMTP server. Without
# either, mail goes to the console (the demo's "mailbox").
_email_host = env_str("EMAIL_HOST", "")
EMAIL_URL = env_str("EMAIL_URL", "")
if not EMAIL_URL:
    if _email_host:
        EMAIL_URL = "smtp{}://{}:{}@{}:{}".format(
            "+tls"
            if env_bool("EMAIL_USE_TLS", False)
            else "s"
            if env_bool("EMAIL_USE_SSL", False)
            else "",
            quote(env_str("EMAIL_HOST_USER", ""), safe=""),
            quote(env_str("EMAIL_HOST_PASSWORD", ""), safe=""),
            _email_host,
            env_int("EMAIL_PORT", 25),
        )
    else:
        EMAIL_URL = "console://"
MAILERS = {"default": mailer_from_url(EMAIL_URL)}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", email_from_address(EMAIL_URL, "hub@localhost"))

# --- Alerts --------------------------------------------------------------------------------

# Absolute links in notices (dashboard, alert history) start with this.
HUB_BASE_URL = env_str("HUB_BASE_URL", "http://127.0.0.1:8000")
ALERT_EVALUATION_SECONDS = env_int("ALERT_EVALUATION_SECONDS", 30, minimum=5)
# A worker holds a delivery this long; past it, beat hands the delivery to another worker.
ALERT_DELIVERY_LEASE_SECONDS = env_int("ALERT_DELIVERY_LEASE_SECONDS", 45, minimum=10)
# Optional dedicated Celery queue for alert deliveries (empty: the default queue).
ALERT_DELIVERY_QUEUE = env_str("ALERT_DELIVERY_QUEUE", "")
# --- Web -----------------------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "integration_hub.staticfiles.PlotlyFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Serve from the finders (no collectstatic needed) in the demo; production runs collectstatic.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# How often dashboards (plant overview, all plants, wall screen) refresh themselves.
DASHBOARD_REFRESH_SECONDS = env_int("DASHBOARD_REFRESH_SECONDS", 15, minimum=1)

LOGIN_URL = "/accounts/login/"
# Messages live in the session (the database), never in a cookie: the admin shows raw API keys
# and signing secrets once through them.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
LOGIN_REDIRECT_URL = "/"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600, minimum=60)
# Sign-in lock-out, per username and per address (integration_hub/signin.py).
LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 5, minimum=1)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 900, minimum=1)
# Behind a TLS proxy that sets X-Forwarded-For/-Proto; off unless the proxy is the only way in.
TRUST_PROXY_HEADERS = env_bool("TRUST_PROXY_HEADERS", False)
# Requests per minute per person or token on the DRF APIs (0: unlimited).
API_RATE_PER_MINUTE = env_int("API_RATE_PER_MINUTE", 600, minimum=0)
# No inline script anywhere: scripts come from our own static files, charts from json_script
# data. Styles still allow inline ones: plotly.js injects its style rules (modebar, hover
# labels) at run time and draws nothing right without them. Our own pages use none.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    if TRUST_PROXY_HEADERS:
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # HTTPS only: redirect plain HTTP (behind a TLS-terminating proxy set TRUST_PROXY_HEADERS=1
    # so the hub sees the original scheme), and tell browsers to stay on HTTPS.
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # load balancers probe over HTTP
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    # The header only: listing the site in browsers is a manual step at hstspreload.org.
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)

# Ingestion reads bodies itself (10 MiB, 413 past that); these bound everything else.
DATA_UPLOAD_MAX_MEMORY_SIZE = 11 * 1024 * 1024
INGEST_MAX_BODY_BYTES = 10 * 1024 * 1024
INGEST_MAX_EVENTS = 5000
# GET /metrics needs "Authorization: Bearer <METRICS_TOKEN>"; unset, the path answers 404.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
# Events older than this are refused: a typo in the year, not a late arrival.
INGEST_MAX_AGE_DAYS = env_int("INGEST_MAX_AGE_DAYS", 400, minimum=1)
# Where events are folded into their transactions: in the ingest request ("request": a 202
# means the transaction already shows the event), or by the correlator process ("deferred":
# `manage.py run_correlator`; the request only stores, and transactions, business-key search
# and dead letters follow within about a second). tracing/ingest/correlator.py.
INGEST_CORRELATION = env_choice("INGEST_CORRELATION", "request", ("request", "deferred"))
# Deferred: events one correlator pass folds at most. An event waits for the pass under way,
# then its own: 2,000 kept the oldest within 0.60 s in the bench where 5,000 let it wait
# 1.18-1.26 s (on a day the machine ran slow; 6,700 against 4,200 events/s to the last fold).
CORRELATOR_BATCH = env_int("CORRELATOR_BATCH", 2000, minimum=1)
CORRELATOR_IDLE_SECONDS = float(env_int("CORRELATOR_IDLE_MS", 200, minimum=10)) / 1000
# Deferred: the event doors answer 503 (Retry-After: 1) while the oldest queued event has
# waited longer than this, or while the queue with the batch at the door would take longer
# than this to fold at the pace the correlators measured (tracing/ingest/backlog.py). Half a
# second: batches already past the check still land and a pass takes its time, so in the bench
# the oldest event waited 0.23-0.38 s past it (1.23 s at 1,000 ms, 1.06 s at 700 ms, 0.85-0.88
# s at 500 ms): reads lag at most about one second.
CORRELATOR_MAX_LAG_SECONDS = float(env_int("CORRELATOR_MAX_LAG_MS", 500, minimum=100)) / 1000
# Deferred: the doors answer 503 too while more events are queued than this (by default one
# and a half passes): the bound until a correlator has measured its pace. The age of the
# oldest alone let 16,000-18,000 events queue up in the bench and the oldest waited up to
# 1.10 s.
CORRELATOR_MAX_QUEUE = env_int("CORRELATOR_MAX_QUEUE", CORRELATOR_BATCH * 3 // 2, minimum=1)
# Deferred: how long an event door holds a batch while the correlator is behind, looking again
# every 25 ms, before it answers 503: a pass usually ends within it, and a refused sender idles
# a whole second (Retry-After counts whole seconds). 0 refuses at once.
CORRELATOR_DOOR_WAIT_SECONDS = env_int("CORRELATOR_DOOR_WAIT_MS", 300, minimum=0) / 1000

# Passwords set through the API and the admin: long enough, not common, not the username.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["integration_hub.api.throttling.PerPersonRate"],
    "DEFAULT_PARSER_CLASSES": [
        "integration_hub.api.parsers.ExactJSONParser",
        "integration_hub.api.parsers.NulFreeFormParser",
        "integration_hub.api.parsers.NulFreeMultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "integration_hub.api.openapi.HubAutoSchema",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}

# OpenAPI 3 at /api/schema/ (Swagger UI /api/docs/, Redoc /api/redoc/), assets from the
# sidecar package. The reporters' doors are plain Django views, described by a hook.
SPECTACULAR_SETTINGS = {
    "TITLE": "Integration hub API",
    "DESCRIPTION": (
        "Trace events in (JSON and OTLP/HTTP), transactions, SLOs, dead letters and alerts out. "
        "People send `Authorization: Token <token>`; reporters send their API key as "
        "`Authorization: Bearer <key>`."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "tracing.ingest.openapi.describe_doors",
        "integration_hub.api.openapi.document_errors",
    ],
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Retention (see integration_hub/retention.py; per plant in the admin and the plants API) --

# Days each kind of data is kept (0: forever), from RETENTION_<KIND>_DAYS.
RETENTION_DAYS = {
    kind: env_int(f"RETENTION_{kind.upper()}_DAYS", days, minimum=0)
    for kind, days in {
        "events": 90,
        "payloads": 30,
        "dead_letters": 180,
        "minute_rollups": 35,
        "hour_rollups": 730,
        "deliveries": 90,
        "replays": 90,
        "transactions": 400,
    }.items()
}
# PostgreSQL only: trace events live in one range partition per period of their receive time
# (tracing/partitions/); beat creates them ahead, retention drops whole expired ones.
EVENT_PARTITION = env_choice("EVENT_PARTITION", "day", ("day", "week", "month"))
RETENTION_BATCH_SIZE = env_int("RETENTION_BATCH_SIZE", 5000, minimum=1)
RETENTION_HOUR_UTC = env_int("RETENTION_HOUR_UTC", 3, minimum=0)

# Cross-system reconciliation (monitoring/reconciliation/): how often it looks, and how far
# back an agreement rule's trigger may lie and still be checked.
RECONCILIATION_SECONDS = env_int("RECONCILIATION_SECONDS", 30, minimum=5)
RECONCILIATION_LOOKBACK_HOURS = env_int("RECONCILIATION_LOOKBACK_HOURS", 24, minimum=1)

CELERY_BEAT_SCHEDULE = {
    "heartbeat": {"task": "integration_hub.heartbeat", "schedule": 30.0},
    "evaluate": {
        "task": "monitoring.evaluate",
        "schedule": float(env_int("SLO_EVALUATION_SECONDS", 30, minimum=5)),
        "options": {"expires": 25},
    },
    "evaluate-alerts": {
        "task": "monitoring.evaluate_alerts",
        "schedule": float(ALERT_EVALUATION_SECONDS),
        "options": {"expires": max(ALERT_EVALUATION_SECONDS - 5, 5)},
    },
    "requeue-alert-deliveries": {
        "task": "monitoring.requeue_deliveries",
        "schedule": 15.0,
        "options": {"expires": 14},
    },
    "apply-retention": {
        "task": "monitoring.apply_retention",
        "schedule": crontab(hour=RETENTION_HOUR_UTC % 24, minute=17),
        "options": {"expires": 3600},
    },
    "ensure-event-partitions": {
        "task": "tracing.ensure_partitions",
        "schedule": crontab(minute=7),
        "options": {"expires": 3000},
    },
    "shift-digests": {
        "task": "monitoring.send_shift_digests",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "reconcile": {
        "task": "monitoring.reconcile",
        "schedule": float(RECONCILIATION_SECONDS),
        "options": {"expires": max(RECONCILIATION_SECONDS - 5, 5)},
    },
    "assign-owners": {
        "task": "monitoring.assign_owners",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    "sweep-replays": {
        "task": "monitoring.sweep_replays",
        "schedule": float(env_int("REPLAY_SWEEP_SECONDS", 15, minimum=1)),
        "options": {"expires": 14},
    },
}

# --- Dead-letter replay (see monitoring/replay/) --------------------------------------

REPLAY_QUEUE = env_str("REPLAY_QUEUE", "celery")
REPLAY_LEASE_SECONDS = env_int("REPLAY_LEASE_SECONDS", 60, minimum=1)
REPLAY_MAX_ATTEMPTS = env_int("REPLAY_MAX_ATTEMPTS", 5, minimum=1)
REPLAY_BACKOFF_SECONDS = env_int("REPLAY_BACKOFF_SECONDS", 2, minimum=0)
REPLAY_BACKOFF_MAX_SECONDS = env_int("REPLAY_BACKOFF_MAX_SECONDS", 300, minimum=1)
REPLAY_RETRY_AFTER_MAX_SECONDS = env_int("REPLAY_RETRY_AFTER_MAX_SECONDS", 600, minimum=1)
REPLAY_TIMEOUT_SECONDS = env_int("REPLAY_TIMEOUT_SECONDS", 10, minimum=1)
REPLAY_CONCURRENCY_PER_SYSTEM = env_int("REPLAY_CONCURRENCY_PER_SYSTEM", 4, minimum=1)
REPLAY_RATE_PER_SYSTEM = env_int("REPLAY_RATE_PER_SYSTEM", 0, minimum=0)  # messages/s; 0: none
REPLAY_BATCH_SIZE = env_int("REPLAY_BATCH_SIZE", 50, minimum=1)
