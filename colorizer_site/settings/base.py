"""Settings shared by every environment.

Every value can be set from the environment (django-environ); the embedded defaults give a
working development setup with no servers at all: SQLite, media files and a filesystem Celery
broker, all under var/. A production settings module imports this one and tightens it.
"""

from pathlib import Path

import environ
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

# Runtime state (database, media, broker messages) stays out of the source tree proper.
VAR_DIR = Path(env("COLORIZER_VAR_DIR", default=str(BASE_DIR / "var")))

SECRET_KEY = env("DJANGO_SECRET_KEY", default="django-insecure-development-key-do-not-deploy")
DEBUG = env.bool("DJANGO_DEBUG", default=True)
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
# None means the weights shipped with mlcore (mlcore.weights.DEFAULT_WEIGHTS); resolved when
# the worker loads the model so that the web process never imports torch.
COLORIZER_WEIGHTS = env("COLORIZER_WEIGHTS", default=None)
COLORIZER_DEVICE = env("COLORIZER_DEVICE", default="auto")
# Working resolution (short side) of the network; None means the model's default.
COLORIZER_SIZE = env.int("COLORIZER_SIZE", default=None)
# A job is given up (state failed) once it has been started this many times: that bounds both
# retries of transient errors and an image that keeps killing its worker.
COLORIZER_JOB_MAX_ATTEMPTS = env.int("COLORIZER_JOB_MAX_ATTEMPTS", default=3)

# --- Celery ------------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
CELERY_TASK_SOFT_TIME_LIMIT = env.int("COLORIZER_JOB_SOFT_TIME_LIMIT", default=540)
CELERY_TASK_TIME_LIMIT = env.int("COLORIZER_JOB_TIME_LIMIT", default=600)
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # An unacknowledged message comes back after this long (worker killed outright): it must
    # outlast the longest legitimate run or a running job would be delivered twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * CELERY_TASK_TIME_LIMIT}
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
# Colorizing has a queue of its own, so GPU workers can take only that (`-Q colorize`) while
# CPU workers take everything. A worker started without -Q consumes both queues.
CELERY_TASK_QUEUES = [Queue("celery"), Queue("colorize")]
CELERY_TASK_ROUTES = {"gallery.tasks.colorize": {"queue": "colorize"}}
# Safety net for messages a broker cannot give back (the filesystem broker loses a message
# whose worker was killed outright): jobs still "running" long after the hard time limit.
CELERY_BEAT_SCHEDULE = {
    "requeue-stale-jobs": {"task": "gallery.tasks.requeue_stale_jobs", "schedule": 300.0},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- REST API (gallery.api) ---------------------------------------------------------------
INSTALLED_APPS += ["rest_framework", "rest_framework.authtoken", "drf_spectacular", "drf_spectacular_sidecar"]
REST_FRAMEWORK = {
    # Token first: an unauthenticated request gets 401 with `WWW-Authenticate: Token`.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "gallery.api.pagination.PhotoPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "gallery.api.exceptions.api_exception_handler",
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
# Throttle counters must be shared by every web process: in Redis when there is one.
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
