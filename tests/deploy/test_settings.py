"""colorizer_site.settings.production, loaded the way a container loads it: from the environment."""

import os
import subprocess
import sys

import pytest

from .helpers import BASE_DIR, manage, production_environment

# Named but never contacted: `check --deploy` looks at settings, not at servers.
REQUIRED = {
    "DATABASE_URL": "postgres://colorizer@127.0.0.1:5432/colorizer",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "AWS_STORAGE_BUCKET_NAME": "colorizer",
}


def test_check_deploy_finds_nothing_to_warn_about():
    # DJANGO_DEBUG is base.py's switch; production ignores it.
    env = production_environment(**REQUIRED, DJANGO_DEBUG="true")

    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")

    assert "System check identified no issues (0 silenced)." in result.stdout


def test_without_https_check_deploy_warns():
    """DJANGO_HTTPS=false (plain-HTTP trials) turns off what `check --deploy` looks for."""
    env = production_environment(**REQUIRED, DJANGO_HTTPS="false")

    result = manage(env, "check", "--deploy", "--fail-level", "WARNING", check=False)

    assert result.returncode == 1
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", *REQUIRED])
def test_a_missing_setting_stops_the_process_with_its_name(missing):
    env = production_environment(**REQUIRED)
    del env[missing]

    result = manage(env, "check", check=False)

    assert result.returncode != 0
    assert f"ImproperlyConfigured: Set the {missing} environment variable" in result.stderr


def test_workers_take_concurrency_and_batch_size_from_the_environment_and_colorize_on_their_queue():
    env = production_environment(**REQUIRED, COLORIZER_WORKER_CONCURRENCY="3", COLORIZER_WORKER_PREFETCH="4")
    script = (
        "from colorizer_site.celery import app; conf = app.conf; "
        "print(conf.worker_concurrency, conf.worker_prefetch_multiplier, "
        "app.amqp.router.route({}, 'gallery.tasks.colorize')['queue'].name, *sorted(app.amqp.queues))"
    )

    result = manage(env, "shell", "--no-imports", "--command", script)

    # A worker started without --queues consumes both queues.
    assert result.stdout.split() == ["3", "4", "colorize", "celery", "colorize"]


DEVELOPMENT_KEY = "django-insecure-development-key-do-not-deploy"
# Each entry point with the settings it picks when DJANGO_SETTINGS_MODULE is not set.
ENTRY_POINTS = {
    "manage.py": ["manage.py", "check"],
    "wsgi": ["-c", "import colorizer_site.wsgi"],
    "asgi": ["-c", "import colorizer_site.asgi"],
    "celery": ["-c", "from colorizer_site.celery import app; app.conf.broker_url"],
}


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_nothing_starts_without_debugging_on_the_public_development_key(entry_point):
    env = {**production_environment(**REQUIRED, DJANGO_DEBUG="false", DJANGO_SECRET_KEY=DEVELOPMENT_KEY)}
    del env["DJANGO_SETTINGS_MODULE"]

    result = subprocess.run([sys.executable, *ENTRY_POINTS[entry_point]], cwd=BASE_DIR, env=env,
                            capture_output=True, text=True)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "set it to a secret of your own" in result.stderr, result.stderr


def test_debugging_is_off_unless_the_development_settings_are_chosen():
    env = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")}
    script = "from django.conf import settings; print(settings.DEBUG); print(settings.SECRET_KEY[:15])"

    development = subprocess.run([sys.executable, "manage.py", "shell", "--no-imports", "--command", script],
                                 cwd=BASE_DIR, env=env, capture_output=True, text=True)
    base = subprocess.run([sys.executable, "manage.py", "shell", "--no-imports", "--command", script],
                          cwd=BASE_DIR, env={**env, "DJANGO_SETTINGS_MODULE": "colorizer_site.settings.base"},
                          capture_output=True, text=True)

    assert development.stdout.split() == ["True", "django-insecure"], development.stderr
    # No key at all: nothing can be signed, so no session or token can be forged with a known one.
    assert base.stdout.split() == ["False"]
    assert "The SECRET_KEY setting must not be empty" in base.stderr
def test_workers_recycle_pool_processes_and_nothing_waits_on_redis_without_bound():
    env = production_environment(**REQUIRED, COLORIZER_WORKER_MAX_TASKS_PER_CHILD="50",
                                 COLORIZER_WORKER_MAX_MEMORY_PER_CHILD_MB="1500", REDIS_TIMEOUT="3")
    script = (
        "from django.conf import settings; from colorizer_site.celery import app; conf = app.conf; "
        "options = conf.broker_transport_options; cache = settings.CACHES['default']; "
        "print(conf.worker_max_tasks_per_child, conf.worker_max_memory_per_child, "
        "options['socket_connect_timeout'], options['socket_timeout'], conf.broker_connection_timeout, "
        "conf.redis_socket_connect_timeout, conf.redis_socket_timeout, cache['BACKEND'], "
        "cache['OPTIONS']['socket_connect_timeout'], cache['OPTIONS']['socket_timeout'], "
        "conf.beat_schedule['sweep-jobs']['task'])"
    )

    result = manage(env, "shell", "--no-imports", "--command", script)

    assert result.stdout.split() == [
        "50", str(1500 * 1024),  # Celery counts KiB
        "3.0", "3.0", "3.0", "3.0", "3.0", "colorizer_site.cache.ForgivingRedisCache", "1.5", "1.5",
        "gallery.tasks.sweep_jobs",
    ]
