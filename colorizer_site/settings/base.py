"""Settings shared by every environment.

Every value can be set from the environment (django-environ); the embedded defaults give a
working development setup with no servers at all: SQLite, media files and a filesystem Celery
broker, all under var/. A production settings module imports this one and tightens it.

DEBUG and SECRET_KEY are left to the environment's own module: dev.py (`make run`, manage.py)
turns debugging on with a public key, production.py requires a key. This module alone runs
with neither (Django's defaults: DEBUG off, no key, so nothing can be signed).
"""

from pathlib import Path

import environ
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

# Runtime state (database, media, broker messages) stays out of the source tree proper.
VAR_DIR = Path(env("COLORIZER_VAR_DIR", default=str(BASE_DIR / "var")))

# Known to everyone (it is in this file and in .env.example): dev.py uses the first, and a
# process that does not debug refuses both.
DEVELOPMENT_SECRET_KEY = "django-insecure-development-key-do-not-deploy"
KNOWN_SECRET_KEYS = {DEVELOPMENT_SECRET_KEY, "replace-with-50-random-characters-from-secrets-token-urlsafe"}
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "gallery",
]

MIDDLEWARE = [
    # /healthz and /readyz for probes, before host checks, HTTPS redirect and login.
    "colorizer_site.health.HealthCheckMiddleware",
    # Oversized bodies refused from Content-Length, before CsrfViewMiddleware reads any.
    "gallery.request_size.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a session unless its view is marked login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "colorizer_site.urls"
WSGI_APPLICATION = "colorizer_site.wsgi.application"

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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "gallery:index"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# Seconds a /readyz answer is reused (colorizer_site.health): probes come every few seconds
# from each load balancer node, and each answer queries the database, broker and bucket.
READYZ_CACHE_SECONDS = env.int("COLORIZER_READYZ_CACHE_SECONDS", default=5)

# --- Storage -----------------------------------------------------------------------------
# Photos are private, so no MEDIA_URL: files are only ever streamed by views that check the
# owner. With S3 any URL the backend does produce (admin, scripts) is signed and short-lived.
AWS_STORAGE_BUCKET_NAME = env("AWS_STORAGE_BUCKET_NAME", default="")
if AWS_STORAGE_BUCKET_NAME:
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env("AWS_S3_ENDPOINT_URL", default=None),
            "access_key": env("AWS_ACCESS_KEY_ID", default=None),
            "secret_key": env("AWS_SECRET_ACCESS_KEY", default=None),
            "region_name": env("AWS_S3_REGION_NAME", default=None),
            "default_acl": "private",
            "querystring_auth": True,
            "querystring_expire": env.int("AWS_QUERYSTRING_EXPIRE", default=300),
            "file_overwrite": False,
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": VAR_DIR / "media"},
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Colorization ------------------------------------------------------------------------
COLORIZER_MAX_UPLOAD_BYTES = env.int("COLORIZER_MAX_UPLOAD_BYTES", default=25 * 1000 * 1000)
COLORIZER_MAX_PIXELS = env.int("COLORIZER_MAX_PIXELS", default=50 * 1000 * 1000)
# Files one request may carry: the upload form without its script sends its files together (the
# script and the API send one per request). The request's size is capped to match
# (gallery.request_size).
COLORIZER_MAX_UPLOAD_FILES = env.int("COLORIZER_MAX_UPLOAD_FILES", default=10)
DATA_UPLOAD_MAX_NUMBER_FILES = COLORIZER_MAX_UPLOAD_FILES
# None means the weights shipped with mlcore (mlcore.weights.DEFAULT_WEIGHTS); resolved when
# the worker loads the model so that the web process never imports torch.
COLORIZER_WEIGHTS = env("COLORIZER_WEIGHTS", default=None)
COLORIZER_DEVICE = env("COLORIZER_DEVICE", default="auto")
# Working resolution (short side) of the network; None means the model's default.
COLORIZER_SIZE = env.int("COLORIZER_SIZE", default=None)
# A job is given up (state failed) once it has been started this many times: that bounds both
# retries of transient errors and an image that keeps killing its worker.
COLORIZER_JOB_MAX_ATTEMPTS = env.int("COLORIZER_JOB_MAX_ATTEMPTS", default=3)
# Shapes no photo has: refused at upload (and by the worker, for files stored before), since a
# sliver of an image decodes small but colorizes huge.
COLORIZER_MIN_SIDE = env.int("COLORIZER_MIN_SIDE", default=16)
COLORIZER_MAX_ASPECT_RATIO = env.float("COLORIZER_MAX_ASPECT_RATIO", default=30)
# Memory (MiB) one job may use beyond the loaded model; larger photos are refused at upload with
# "too large to colorize here" (gallery.services.estimated_peak_mb). The default admits the
# largest photo COLORIZER_MAX_PIXELS allows.
COLORIZER_WORKER_MEMORY_MB = env.int("COLORIZER_WORKER_MEMORY_MB", default=4096)
# A running job's lease (seconds): its worker renews it every quarter of this; once it runs out
# the worker is taken for dead and the sweeper queues the job again.
COLORIZER_JOB_LEASE_SECONDS = env.int("COLORIZER_JOB_LEASE_SECONDS", default=60)
# How often beat runs the sweeper (gallery.tasks.sweep_jobs), and after how long a queued job
# whose message is not in the (empty) queue is sent again.
COLORIZER_SWEEP_INTERVAL = env.float("COLORIZER_SWEEP_INTERVAL", default=30)
COLORIZER_JOB_RESEND_AFTER = env.int("COLORIZER_JOB_RESEND_AFTER", default=900)

# --- Celery ------------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
# Seconds to connect to Redis, and to wait for any answer: a Redis that does not answer (as
# opposed to a closed port) must fail publishing, throttles and /readyz quickly, not hang them.
REDIS_TIMEOUT = env.float("REDIS_TIMEOUT", default=2)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("COLORIZER_JOB_SOFT_TIME_LIMIT", default=540)
CELERY_TASK_TIME_LIMIT = env.int("COLORIZER_JOB_TIME_LIMIT", default=600)
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # An unacknowledged message comes back after this long (worker killed outright): it must
    # outlast the longest legitimate run or a running job would be delivered twice.
    # Job leases (COLORIZER_JOB_LEASE_SECONDS) recover a dead worker's job much sooner; this is
    # the backstop.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": 2 * CELERY_TASK_TIME_LIMIT,
        "socket_connect_timeout": REDIS_TIMEOUT,
        "socket_timeout": REDIS_TIMEOUT,
    }
    # Connecting (kombu retries within this many seconds) gets no more time than one try.
    CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_TIMEOUT
    # Results are not stored (below); should a Redis result backend ever be named, it gets the same bounds.
    CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = REDIS_TIMEOUT
    CELERY_REDIS_SOCKET_TIMEOUT = REDIS_TIMEOUT
else:
    # No server needed: messages are files under var/broker (one machine only).
    BROKER_DIR = VAR_DIR / "broker"
    CELERY_BROKER_URL = "colorizer-files://"  # colorizer_site/broker.py
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "messages"),
        "data_folder_out": str(BROKER_DIR / "messages"),
        "control_folder": str(BROKER_DIR / "control"),
        # An idle worker looks at the folder this often (kombu's default is once a second, which
        # left a worker idle most of the time with small photos): a job waits at most this long.
        "polling_interval": env.float("COLORIZER_BROKER_POLLING_INTERVAL", default=0.05),
    }
    for _folder in ("messages", "control"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Job state lives in the database, so Celery results are never stored.
CELERY_TASK_IGNORE_RESULT = True
# Acknowledge only after the task ran, and put the message back if its worker process died:
# a crash re-queues the job instead of losing it.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Colorizing is long and memory hungry: by default a worker process reserves one job at a
# time. A fast GPU worker may take a batch of several, so that it never waits on the broker.
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("COLORIZER_WORKER_PREFETCH", default=1)
# Processes per worker; Celery's default is one per CPU core (a GPU worker wants one per GPU).
CELERY_WORKER_CONCURRENCY = env.int("COLORIZER_WORKER_CONCURRENCY", default=None)
# torch threads in each of those processes; by default the worker shares its cores out among
# them (processes x threads = cores; gallery.tasks.torch_threads).
COLORIZER_TORCH_THREADS = env.int("COLORIZER_TORCH_THREADS", default=None)
# Pool processes are replaced after this many jobs, and after any job that leaves them holding
# more than this much memory (a large photo's buffers are not all given back to the system).
CELERY_WORKER_MAX_TASKS_PER_CHILD = env.int("COLORIZER_WORKER_MAX_TASKS_PER_CHILD", default=200)
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env.int("COLORIZER_WORKER_MAX_MEMORY_PER_CHILD_MB", default=2048) * 1024  # KiB
# Colorizing has a queue of its own, so GPU workers can take only that (`-Q colorize`) while
# CPU workers take everything. A worker started without -Q consumes both queues.
CELERY_TASK_QUEUES = [Queue("celery"), Queue("colorize")]
CELERY_TASK_ROUTES = {"gallery.tasks.colorize": {"queue": "colorize"}}
# The sweeper: sends jobs the broker never got (it was down), and queues again running jobs
# whose lease ran out (their worker died). See gallery.services.sweep_jobs.
CELERY_BEAT_SCHEDULE = {
    # A sweep not run before the next is due is dropped (workers away: no backlog of sweeps).
    "sweep-jobs": {"task": "gallery.tasks.sweep_jobs", "schedule": COLORIZER_SWEEP_INTERVAL,
                   "options": {"expires": COLORIZER_SWEEP_INTERVAL}},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Abuse limits (gallery.ratelimits) ----------------------------------------------------
# How many proxies (load balancer, reverse proxy) stand between clients and the app, each adding
# to X-Forwarded-For: every limit per client address takes the address the outermost one saw.
# 0 ignores the header (a client could write anything there); more than there really are lets
# clients pick their own address.
TRUSTED_PROXIES = env.int("DJANGO_TRUSTED_PROXIES", default=0)
# Failed log-ins (web, admin, API token) within a window, per client address and per account,
# before further tries wait for the window to end.
COLORIZER_LOGIN_FAILURES_PER_ADDRESS = env.int("COLORIZER_LOGIN_FAILURES_PER_ADDRESS", default=20)
COLORIZER_LOGIN_FAILURES_PER_ACCOUNT = env.int("COLORIZER_LOGIN_FAILURES_PER_ACCOUNT", default=10)
COLORIZER_LOGIN_LOCKOUT_MINUTES = env.int("COLORIZER_LOGIN_LOCKOUT_MINUTES", default=15)
COLORIZER_SIGNUPS_PER_HOUR = env.int("COLORIZER_SIGNUPS_PER_HOUR", default=10)

# --- REST API (gallery.api) ---------------------------------------------------------------
INSTALLED_APPS += ["rest_framework", "rest_framework.authtoken", "drf_spectacular", "drf_spectacular_sidecar"]
REST_FRAMEWORK = {
    # Token first: an unauthenticated request gets 401 with `WWW-Authenticate: Token`.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "gallery.api.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "gallery.api.pagination.PhotoPagination",
    "DEFAULT_SCHEMA_CLASS": "gallery.api.schema.ApiSchema",  # every operation with its error statuses
    "EXCEPTION_HANDLER": "gallery.api.exceptions.api_exception_handler",
    # The throttles use gallery.ratelimits.client_address; this makes DRF's own agree with it.
    "NUM_PROXIES": TRUSTED_PROXIES,
    "DEFAULT_THROTTLE_RATES": {
        "uploads_per_minute": f"{env.int('COLORIZER_API_UPLOADS_PER_MINUTE', default=60)}/minute",
        "uploads_per_day": f"{env.int('COLORIZER_API_UPLOADS_PER_DAY', default=2000)}/day",
        "token_attempts": f"{env.int('COLORIZER_API_TOKEN_ATTEMPTS_PER_MINUTE', default=10)}/minute",
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Colorizer API",
    "DESCRIPTION": "Upload black-and-white photos, follow their colorization jobs, download the results.",
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Multipart uploads are described as files, responses separately from requests.
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs page works offline: Swagger UI is served from our static files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# API tokens stop working this many days after they were made (a new one comes from the token
# endpoint or the profile page); None: they last until reset. A password change always resets it.
COLORIZER_API_TOKEN_DAYS = env.int("COLORIZER_API_TOKEN_DAYS", default=None)
# Throttle and rate-limit counters must be shared by every web process: in Redis when there is one.
# While Redis is away the cache answers "nothing stored" (throttles let requests through) and logs it,
# rather than failing requests (colorizer_site.cache).
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "colorizer_site.cache.ForgivingRedisCache",
            "LOCATION": REDIS_URL,
            # Half the broker's: an upload waits on both when Redis does not answer.
            "OPTIONS": {"socket_connect_timeout": REDIS_TIMEOUT / 2, "socket_timeout": REDIS_TIMEOUT / 2},
        }
    }
