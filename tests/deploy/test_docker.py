"""docker/compose.yml as `docker compose config` reads it (no Docker engine needed), with
.env.example as its env file; and .env.example against the settings the code reads."""

import os
import re
import shutil
import subprocess

import pytest
import yaml

from .helpers import BASE_DIR

ENV_EXAMPLE = BASE_DIR / ".env.example"
APP_SERVICES = ["migrate", "web", "worker", "worker-gpu", "beat"]
# Read by the postgres and minio images, not by the app.
IMAGE_SETTINGS = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"}


def compose_cli():
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    reason = "the Docker Compose CLI is missing (`make compose-cli` installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def services():
    result = subprocess.run(
        [*compose_cli(), "--file", BASE_DIR / "docker" / "compose.yml", "--profile", "gpu", "config"],
        env={**os.environ, "COLORIZER_ENV_FILE": str(ENV_EXAMPLE)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]


def example_settings():
    """The variables .env.example sets (not those only shown in comments)."""
    return dict(re.findall(r"^(\w+)=(.*)$", ENV_EXAMPLE.read_text(), re.MULTILINE))


def mounts(service):
    """(volume, path) pairs, whichever syntax the Compose version writes."""
    return {
        tuple(volume.split(":")[:2]) if isinstance(volume, str) else (volume["source"], volume["target"])
        for volume in service.get("volumes", [])
    }


def option(command, name):
    return command[command.index(name) + 1]


def test_the_stack_has_every_service(services):
    assert set(services) == {"postgres", "redis", "minio", "bucket", "migrate", "web", "worker", "worker-gpu", "beat"}


def test_long_running_services_have_health_checks(services):
    for name in ("postgres", "redis", "minio", "web", "worker", "worker-gpu"):
        assert services[name]["healthcheck"]["test"], name


def test_data_lives_in_volumes(services):
    assert ("postgres", "/var/lib/postgresql/data") in mounts(services["postgres"])
    assert ("redis", "/data") in mounts(services["redis"])
    assert ("minio", "/data") in mounts(services["minio"])


def test_every_app_container_gets_the_env_file(services):
    settings = example_settings()
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "AWS_STORAGE_BUCKET_NAME"} <= set(settings)
    for name in APP_SERVICES:
        environment = services[name]["environment"]
        assert {key: environment.get(key) for key in settings} == settings, name


def test_migrations_run_once_before_web_and_workers(services):
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--no-input"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker", "worker-gpu", "beat"):
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name
        assert depends_on["bucket"]["condition"] == "service_completed_successfully", name


def test_web_runs_gunicorn_with_its_config(services):
    assert services["web"]["command"] == ["gunicorn", "--config", "gunicorn.conf.py", "colorizer_site.wsgi"]
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])


def test_only_the_proxy_on_the_host_reaches_the_app(services):
    [port] = services["web"]["ports"]
    # Either syntax, whichever the Compose version writes.
    if isinstance(port, str):
        assert port.removesuffix("/tcp") == "127.0.0.1:8000:8000"
    else:
        assert (port["host_ip"], str(port["published"]), int(port["target"])) == ("127.0.0.1", "8000", 8000)
    for name in set(services) - {"web"}:
        assert not services[name].get("ports"), name
    # Behind that one proxy, the address it saw is the client's.
    assert example_settings()["DJANGO_TRUSTED_PROXIES"] == "1"


def test_cpu_workers_take_every_queue_and_gpu_workers_only_colorizing(services):
    cpu, gpu = services["worker"], services["worker-gpu"]

    assert option(cpu["command"], "--queues") == "colorize,celery"
    assert cpu["environment"]["COLORIZER_DEVICE"] == "cpu"

    assert option(gpu["command"], "--queues") == "colorize"
    assert gpu["environment"]["COLORIZER_DEVICE"] == "cuda"
    assert gpu["image"] != cpu["image"]
    assert "whl/cpu" not in gpu["build"]["args"]["TORCH_INDEX"]
    [device] = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"]


def test_env_example_documents_every_setting_the_code_reads():
    settings = BASE_DIR / "colorizer_site" / "settings"
    sources = [settings / "base.py", settings / "production.py", BASE_DIR / "gunicorn.conf.py"]
    reads = re.compile(r"""\benv(?:\.\w+)?\(\s*["'](\w+)["']|\bos\.environ\.get\(\s*["'](\w+)["']""")
    names = {"".join(match) for source in sources for match in reads.findall(source.read_text())}
    documented = set(re.findall(r"^#? ?(\w+)=", ENV_EXAMPLE.read_text(), re.MULTILINE))

    assert len(names) > 20  # the pattern still finds the reads
    assert names - documented - {"DJANGO_DEBUG"} == set()
    assert "DJANGO_DEBUG is ignored" in ENV_EXAMPLE.read_text()
    assert documented - names - IMAGE_SETTINGS == set(), "documented but read by nothing"
