"""One settings module, driven by the environment.

DATABASE_URL   defaults to SQLite (WAL) at $LEADRELAY_DATA_DIR/leadrelay.sqlite3;
               a postgres:// URL works unchanged.
REDIS_URL      when set, background tasks run on RQ over Redis.
SECRET_KEY     signs sessions and click ids. Unset, one is made and kept in the data
               dir: fine for one node; several web nodes must share one SECRET_KEY.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DATA_DIR = Path(os.environ.get("LEADRELAY_DATA_DIR", Path.cwd() / "data")).resolve()
DEBUG = _env_bool("LEADRELAY_DEBUG", False)


def _secret_key() -> str:
    """The configured key, else one kept in the data dir so restarts keep sessions and click ids."""
    configured = os.environ.get("SECRET_KEY")
    if configured:
        return configured
    key_file = DATA_DIR / "secret_key"
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: of two processes starting at once, one writes and both read the same key.
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):
            key = key_file.read_text().strip()
            if key:
                return key
            time.sleep(0.01)  # the other process is still writing it
        raise RuntimeError(f"{key_file} is empty: delete it or set SECRET_KEY") from None
    key = secrets.token_urlsafe(50)
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
    if h.strip()
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]
# The public base URL, used to build tracking-link and form URLs shown to users.
PUBLIC_BASE_URL = os.environ.get("LEADRELAY_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "ninja",  # serves the API docs' Swagger UI from the installed package, not a CDN
    "django_tasks",
    "django_tasks_db",
    "leadrelay.core",
    "leadrelay.accounts",
    "leadrelay.offers",
    "leadrelay.tracking",
    "leadrelay.leads",
    "leadrelay.postbacks",
    "leadrelay.ledger",
    "leadrelay.distribution",
    "leadrelay.reporting",
    "leadrelay.portals",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Limits first, then the text rule: both before a session, a key or a body is read.
    "leadrelay.core.ratelimit.AddressLimitMiddleware",
    "leadrelay.core.text.TextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "leadrelay.urls"
WSGI_APPLICATION = "leadrelay.wsgi.application"
ASGI_APPLICATION = "leadrelay.asgi.application"

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
                "leadrelay.accounts.context.acting_organization",
            ],
        },
    },
]


def _database(url: str) -> dict[str, Any]:
    config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=60))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # IMMEDIATE takes the write lock at BEGIN, so concurrent writers queue
        # instead of failing half way; WAL lets readers go on meanwhile.
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
                " PRAGMA busy_timeout=20000;"
            ),
        }
    else:
        config["CONN_HEALTH_CHECKS"] = True
    return config


DEFAULT_DATABASE_URL = f"sqlite:///{DATA_DIR / 'leadrelay.sqlite3'}"
DATABASES = {"default": _database(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-leadrelay.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "portal-home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing root
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Serve straight from the installed packages: no collectstatic step for the demo.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    RQ_QUEUES = {"default": {"URL": REDIS_URL}}
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    INSTALLED_APPS.append("django_rq")
else:
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = _env_bool("LEADRELAY_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# Tracking. Clicks are buffered per process and written in batches (tracking/buffer.py).
LEADRELAY_CLICK_FLUSH_SECONDS = float(os.environ.get("LEADRELAY_CLICK_FLUSH_SECONDS", "1"))
LEADRELAY_CLICK_BATCH = int(os.environ.get("LEADRELAY_CLICK_BATCH", "500"))
LEADRELAY_CLICK_FLUSH_THREAD = True  # tests turn it off and flush by hand
# How long a process keeps a tracking link and its offer for redirects (seconds).
LEADRELAY_LINK_CACHE_SECONDS = float(os.environ.get("LEADRELAY_LINK_CACHE_SECONDS", "5"))
# Proxies whose X-Forwarded-For is believed (CIDRs, comma separated), e.g. "10.0.0.0/8".
LEADRELAY_TRUSTED_PROXIES = [
    c.strip() for c in os.environ.get("LEADRELAY_TRUSTED_PROXIES", "").split(",") if c.strip()
]
# An offline MaxMind-format country database (.mmdb); unset, countries are unknown.
LEADRELAY_GEOIP_DB = os.environ.get("LEADRELAY_GEOIP_DB", "")
VISITOR_COOKIE_MAX_AGE = 365 * 24 * 3600

# Outbound URLs (affiliate postbacks): refuse hosts that are loopback, private, link-local,
# CGNAT or cloud metadata, so a user can't make the server call its own network.
# Only for development and tests on one machine.
LEADRELAY_ALLOW_PRIVATE_URLS = _env_bool("LEADRELAY_ALLOW_PRIVATE_URLS", False)
# How long one postback call may take, connect to last byte (seconds).
LEADRELAY_POSTBACK_TIMEOUT_SECONDS = float(
    os.environ.get("LEADRELAY_POSTBACK_TIMEOUT_SECONDS", "10")
)

# Sweeps `leadrelay worker` runs beside its tasks: (dotted path of a no-argument callable,
# every so many seconds).
# Outgoing mail (lead deliveries by email): an SMTP server.
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = os.environ.get("LEADRELAY_SMTP_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("LEADRELAY_SMTP_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("LEADRELAY_SMTP_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("LEADRELAY_SMTP_PASSWORD", "")
EMAIL_USE_TLS = _env_bool("LEADRELAY_SMTP_STARTTLS", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = os.environ.get("LEADRELAY_MAIL_FROM", "leads@leadrelay.invalid")

# Distribution (distribution/returns.py): an accepted buyer return also takes back the
# affiliate's commission once no buyer keeps the lead.
LEADRELAY_RETURNS_REVERSE_COMMISSION = _env_bool("LEADRELAY_RETURNS_REVERSE_COMMISSION", True)

# How often the worker re-queues sends a crashed worker or a lost task left behind, and how
# long a worker's claim on a delivery lasts (longer than one try).
_RESUME_SWEEP = float(os.environ.get("LEADRELAY_RESUME_SWEEP_SECONDS", "60"))
LEADRELAY_DELIVERY_CLAIM_SECONDS = float(os.environ.get("LEADRELAY_DELIVERY_CLAIM_SECONDS", "60"))

LEADRELAY_PERIODIC_JOBS = [
    ("leadrelay.postbacks.services.postback_deliveries_resume_now", _RESUME_SWEEP),
    ("leadrelay.leads.idempotency.idempotency_records_prune", 3600.0),
    ("leadrelay.core.ratelimit.rate_counters_prune", 300.0),
    ("leadrelay.leads.hold.leads_hold_release_now", 60.0),
    ("leadrelay.ledger.earnings.earnings_book_now", 300.0),
    ("leadrelay.distribution.delivery.deliveries_resume_now", _RESUME_SWEEP),
    # Emailed report summaries (reporting/subscriptions.py): sent within this many
    # seconds of their hour.
    (
        "leadrelay.reporting.subscriptions.report_summaries_send_now",
        float(os.environ.get("LEADRELAY_REPORT_EMAIL_SWEEP_SECONDS", "300")),
    ),
]

# Rate limits (core/ratelimit.py): name -> (requests, per seconds).
LEADRELAY_RATE_LIMITS: dict[str, tuple[int, int]] = {
    "lead_post_key": (
        int(os.environ.get("LEADRELAY_RATE_LEAD_POST_PER_KEY", "1200")),
        60,
    ),
    "lead_post_ip": (int(os.environ.get("LEADRELAY_RATE_LEAD_POST_PER_IP", "600")), 60),
    # Each inbound ping may ping every buyer of the offer: fewer than lead posts.
    "ping_key": (int(os.environ.get("LEADRELAY_RATE_PING_PER_KEY", "600")), 60),
    "form_post_ip": (int(os.environ.get("LEADRELAY_RATE_FORM_POST_PER_IP", "20")), 60),
    "ping_ip": (int(os.environ.get("LEADRELAY_RATE_PING_PER_IP", "1200")), 60),
    "postback_ip": (int(os.environ.get("LEADRELAY_RATE_POSTBACK_PER_IP", "1200")), 60),
    "login_ip": (int(os.environ.get("LEADRELAY_RATE_LOGIN_PER_IP", "30")), 60),
    # Every other API call: per address before the key is looked up, per key after.
    "api_ip": (int(os.environ.get("LEADRELAY_RATE_API_PER_IP", "1200")), 60),
    "api_key": (int(os.environ.get("LEADRELAY_RATE_API_PER_KEY", "1200")), 60),
}
# Which limit a request's address is counted under, before anything else reads the request
# (core/ratelimit.py): the first rule whose method ("*": any) and path pattern match.
LEADRELAY_ADDRESS_LIMITS: list[tuple[str, str, str]] = [
    ("POST", r"/api/v1/leads", "lead_post_ip"),
    ("POST", r"/api/v1/ping", "ping_ip"),
    ("*", r"/api/.*", "api_ip"),
    ("POST", r"/f/\d+/", "form_post_ip"),
    ("*", r"/postback", "postback_ip"),
    ("POST", r"/login/", "login_ip"),
]

# Keys the hashes that duplicates and suppression lists are matched by (leads/dedupe.py);
# unset, derived from SECRET_KEY. Changing it makes earlier leads unmatchable.
LEADRELAY_DEDUPE_PEPPER = os.environ.get("LEADRELAY_DEDUPE_PEPPER", "")

# Routes bench/echo (core/bench_views.py), the bare JSON POST bench/leads.py compares
# lead intake with. Only for benchmarks on one machine.
LEADRELAY_BENCH_ENDPOINTS = _env_bool("LEADRELAY_BENCH_ENDPOINTS", False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
