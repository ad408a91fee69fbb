"""colorizer_site.settings.production, loaded the way a container loads it: from the environment."""

import pytest

from .helpers import manage, production_environment

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
