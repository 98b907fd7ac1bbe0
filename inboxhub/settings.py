"""InboxHub settings: everything configurable comes from the environment (see README)."""

import os
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from inboxhub.lib.env import env_bool, env_cpu_priority, env_int, env_list, env_networks, env_str, env_url
from inboxhub.lib.secret_key import local_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
# `make run` sets LOCAL_RUN, pytest sets PYTEST_VERSION (in the processes tests start, too): plain HTTP on
# this machine, and a random key of this checkout's own. Anything else is a deployment (issue 16).
LOCAL_RUN = env_bool("LOCAL_RUN", False) or "PYTEST_VERSION" in os.environ
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY and (LOCAL_RUN or DEBUG):
    SECRET_KEY = local_secret_key(VAR_DIR / "secret_key")
# Otherwise it stays empty: web, runsmtp, workers and beat refuse to start naming it (require_secret_key),
# and anything else that signs raises; makemigrations and collectstatic need no key.
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Where links in mail a worker writes (assignment notifications) point: no request tells it the address.
# Default: make run's address locally; elsewhere the first trusted origin, or the first allowed host.
_SITE_GUESSES = [f"http://127.0.0.1:{env_int('PORT', 8000)}"] if LOCAL_RUN or DEBUG else []
_SITE_GUESSES += CSRF_TRUSTED_ORIGINS + [f"https://{h.lstrip('.')}" for h in ALLOWED_HOSTS if h != "*"]
SITE_URL = env_url("SITE_URL", (_SITE_GUESSES or ["http://127.0.0.1:8000"])[0])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "csp",
    "axes",
    "inboxhub",
    "inboxes",
    "channels_conn",
    "routing",
    "tickets",
    "ingest",
]

MIDDLEWARE = [
    "inboxes.live_views.PollFirst",  # the live updates' poll, before the rest (H5, inboxes/live_views.py)
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "inboxhub.urls"
WSGI_APPLICATION = "inboxhub.wsgi.application"
ASGI_APPLICATION = "inboxhub.asgi.application"

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
                "inboxhub.context_processors.navigation",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
# Unset: one SQLite file shared by web, ingress and worker (WAL + IMMEDIATE
# transactions so concurrent writers wait instead of failing with "locked").
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    try:
        DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "inboxhub.sqlite3",
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth ----------------------------------------------------------------------
AUTH_USER_MODEL = "inboxhub.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
PASSWORD_RESET_TIMEOUT = 60 * 60 * 24 * 3  # invite links live three days

# Lockout after repeated failures, counted per username and per IP, each on its own: a flat list
# (a nested one would count (username, IP) pairs, giving every new IP a fresh allowance).
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = 0.25  # hours after the last wrong password
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# A success would also wipe its IP's count: one valid login of their own would reset a sprayer's allowance.
AXES_RESET_ON_SUCCESS = False
# Renders registration/locked_out.html with the time the lock ends.
AXES_LOCKOUT_CALLABLE = "inboxhub.views.auth.locked_out"
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "inboxhub.forms.login_username"
# Reverse proxies (a TLS terminator) in front of the web app: the client's address is then read from
# X-Forwarded-For (inboxhub/lib/client_ip.py), else everyone shares the proxy's lockout and sign-up allowance.
WEB_PROXY_COUNT = env_int("WEB_PROXY_COUNT", 0)
AXES_CLIENT_IP_CALLABLE = "inboxhub.lib.client_ip.client_ip"
AXES_ENABLED = env_bool("AXES_ENABLED", True)

# --- Security headers ----------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# HTTPS only, unless debugging or running locally (`make run` and the tests serve plain HTTP on loopback).
# Behind a proxy that ends TLS, gunicorn believes its X-Forwarded-Proto from FORWARDED_ALLOW_IPS (README).
HTTPS_ONLY = not (DEBUG or LOCAL_RUN)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS_ONLY)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365 if HTTPS_ONLY else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
# The preload list binds the whole registrable domain for months: the operator's decision, not a default.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", HTTPS_ONLY)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"  # only a mail's HTML is framed, by its own view (xframe_options_sameorigin)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "https:", "cid:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "frame-src": [SELF],
        "frame-ancestors": [SELF],
        "form-action": [SELF],
        "base-uri": [NONE],
        "object-src": [NONE],
    },
}

# --- i18n / static -------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request without it
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Mail ---------------------------------------------------------------------
INBOUND_DOMAIN = env_str("INBOUND_DOMAIN", "inbox.localhost")
SENDING_DOMAIN_PAID = env_str("SENDING_DOMAIN_PAID", "mail.localhost")
SENDING_DOMAIN_FREE = env_str("SENDING_DOMAIN_FREE", "free-mail.localhost")
# C4: the SPF include a custom from address's domain needs so DMARC lets our mail through.
SENDING_SPF_INCLUDE = env_str("SENDING_SPF_INCLUDE", f"_spf.{SENDING_DOMAIN_PAID}")
SMTP_INGRESS_HOST = env_str("SMTP_INGRESS_HOST", "127.0.0.1")
SMTP_INGRESS_PORT = env_int("SMTP_INGRESS_PORT", 2525)
MAX_MESSAGE_BYTES = env_int("MAX_MESSAGE_BYTES", 25 * 1024 * 1024)
MAX_HTML_BYTES = env_int("MAX_HTML_BYTES", 2 * 1024 * 1024)  # larger mail HTML is not shown; its text is
# The name in the ingress banner and EHLO reply; set it to the MX host name.
SMTP_HOSTNAME = env_str("SMTP_HOSTNAME", f"mx.{INBOUND_DOMAIN}")
# Seconds a silent client may hold a connection (RFC 5321 4.5.3.2 asks at least 5 minutes).
SMTP_IDLE_TIMEOUT = env_int("SMTP_IDLE_TIMEOUT", 300)
# RCPTs beyond this get 452 4.5.3 and the client sends them in another transaction.
SMTP_MAX_RECIPIENTS = env_int("SMTP_MAX_RECIPIENTS", 50)
# Threads of one runsmtp process that talk to the database (recipient lookups, spool commits).
SMTP_DB_THREADS = env_int("SMTP_DB_THREADS", 4)
# A spool commit stuck longer than this (locks, a hung server) answers 451 instead of hanging.
SMTP_DB_TIMEOUT = env_int("SMTP_DB_TIMEOUT", 30)
# A spooled message that fails this many times is marked failed for an admin to retry (G5).
INGEST_MAX_ATTEMPTS = env_int("INGEST_MAX_ATTEMPTS", 5)
# Ids that queued up together go to the workers as one task of at most this many: a task message per
# id cost the CPU-bound ingress a quarter of its time (issue 4). A quiet ingress sends batches of one.
INGEST_BATCH_SIZE = env_int("INGEST_BATCH_SIZE", 25)
# A batch task starts no message after this many seconds; the rest go back to the queue.
INGEST_BATCH_SECONDS = env_int("INGEST_BATCH_SECONDS", 15)
# Raw mail of processed messages is kept this many days for inspect_email and re-processing, then
# deleted (issue 18: the spool was most of the database); 0 keeps it for ever. Failed mail is kept.
SPOOL_RETENTION_DAYS = env_int("SPOOL_RETENTION_DAYS", 30)
# Attachments above these sizes are not stored; the message is kept and lists what was skipped.
ATTACHMENT_MAX_BYTES = env_int("ATTACHMENT_MAX_BYTES", 25 * 1024 * 1024)
ATTACHMENTS_TOTAL_MAX_BYTES = env_int("ATTACHMENTS_TOTAL_MAX_BYTES", 50 * 1024 * 1024)
# An agent's reply may carry files up to this many bytes together; more is refused with the limit named.
REPLY_ATTACHMENTS_MAX_BYTES = env_int("REPLY_ATTACHMENTS_MAX_BYTES", 10 * 1024 * 1024)
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 20
# Without a smarthost, local runs print outgoing mail (invites, resets) on the console.
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", f"InboxHub <no-reply@{SENDING_DOMAIN_PAID}>")
DNS_NAMESERVERS = env_list("DNS_NAMESERVERS", [])
TRUSTED_NETWORKS = env_networks("TRUSTED_NETWORKS", [])
TRUSTED_RELAYS = env_networks("TRUSTED_RELAYS", [])
TRUSTED_AUTHSERV_ID = env_str("TRUSTED_AUTHSERV_ID")

# --- Celery --------------------------------------------------------------------
# Unset REDIS_URL: tasks run eagerly in the calling process (make run's default).
REDIS_URL = env_str("REDIS_URL")
# The in-process broker gets a host name: without one kombu warns "No hostname was supplied" for
# every process that sends a task (the demo seed, each sweep of make run; issue 16).
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 600}
# Celery's Django fixup otherwise closes the database connection before and after every task, so
# each message paid a new PostgreSQL connection. Kept instead; inboxhub.celery drops one that failed
# or outlived CONN_MAX_AGE after its task, and the claim retries once on a connection the server dropped.
CELERY_DB_REUSE_MAX = 1000
# Workers run below the ingress and the web app: when the cores are busy, mail is accepted and pages
# served first, and the backlog waits in the spool. `idle` is Linux's SCHED_IDLE (the workers get only
# CPU time nothing else wants; elsewhere nice 19), a number a nice value (inboxhub/celery.py).
WORKER_CPU_PRIORITY = env_cpu_priority("WORKER_CPU_PRIORITY", "idle")
CELERY_BEAT_SCHEDULE: dict = {
    # Every 30 s: re-enqueue spooled mail that Redis lost or a killed worker left behind, so
    # Redis is never the only copy of a message (G2, DESIGN "Durability").
    "sweep-inbound": {"task": "channels_conn.tasks.sweep_inbound_task", "schedule": 30.0},
    # Every minute: hand invites and verification mail whose task Redis lost back to the workers.
    "sweep-outbound": {"task": "inboxhub.tasks.sweep_outbound_task", "schedule": 60.0},
    # Every minute: hand agents' replies whose task Redis lost (or a killed worker left) back to the workers.
    "sweep-replies": {"task": "inboxes.tasks.sweep_replies_task", "schedule": 60.0},
    # Every minute: keep processed raw mail without the attachment bytes its messages store as files.
    "compact-spool": {"task": "ingest.tasks.compact_spool_task", "schedule": 60.0},
    # Every hour: delete the raw mail of messages processed more than SPOOL_RETENTION_DAYS ago.
    "prune-spool": {"task": "channels_conn.tasks.prune_spool_task", "schedule": 3600.0},
    # Every 10 minutes: drop "who else is here" rows of pages closed without a goodbye.
    "prune-presence": {"task": "inboxes.tasks.prune_presence_task", "schedule": 600.0},
    # Every hour: messages older than 30 days give up their stored search vector, computed again when
    # a search reaches them (inboxes/search.py, issue 18: the vectors took more room than the text).
    "forget-search-vectors": {"task": "inboxes.tasks.forget_old_search_vectors_task", "schedule": 3600.0},
}

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Paths in log lines ("Not Found: /invite/…") carry link tokens: masked (issue 16).
    "filters": {"mask_tokens": {"()": "inboxhub.lib.log_tokens.MaskTokens"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["mask_tokens"]}
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # aiosmtpd logs every command (recipients included) at INFO.
        "axes": {"level": "WARNING"},
        "mail.log": {"level": "WARNING"},
        # Django's own handlers print paths unmasked: its records go through the console above instead.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
