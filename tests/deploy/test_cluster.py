"""The production stack on loopback: gunicorn and a Celery worker with the production settings,
PostgreSQL, Redis and moto's S3 server; an upload goes through to its colorized result.

Runs in the second pass of `make test` (PostgreSQL and Redis named by the environment), in a
database and a Redis database of its own that are dropped and emptied afterwards.
"""

import io
import os
import re
import time
from urllib.parse import quote, urlsplit

import boto3
import psycopg
import pytest
import redis
import requests
from django.conf import settings
from moto.server import ThreadedMotoServer
from PIL import Image

from .helpers import BIN, Server, free_port, grey_png, gunicorn, manage, production_environment

pytestmark = pytest.mark.services

BUCKET = "colorizer-deploy"
# The services pass uses Redis database 15; this test empties 14.
REDIS_DB = 14
REDIS_LOCK = "colorizer-deploy-test"
PASSWORD = "a long enough passphrase"


@pytest.fixture(scope="module")
def postgres():
    database = settings.DATABASES["default"]
    if "postgresql" not in database["ENGINE"] or not settings.REDIS_URL:
        pytest.skip("needs PostgreSQL and Redis: runs in the second pass of `make test` (make test-services)")
    return database


@pytest.fixture(scope="module")
def database_url(postgres):
    """A database of its own, created for the module and dropped after it."""
    server = {"host": postgres["HOST"] or "127.0.0.1", "port": postgres["PORT"] or 5432, "user": postgres["USER"],
              "password": postgres["PASSWORD"] or None}
    name = f"colorizer_deploy_{os.getpid()}"
    with psycopg.connect(**server, dbname="postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        credentials = quote(server["user"]) + (f":{quote(server['password'])}" if server["password"] else "")
        yield f"postgres://{credentials}@{server['host']}:{server['port']}/{name}"
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def redis_url(postgres):
    """Redis database REDIS_DB, for this run alone (a lock keeps out a concurrent run), emptied after."""
    url = urlsplit(settings.REDIS_URL)
    assert url.path != f"/{REDIS_DB}", "the services pass and this test need different Redis databases"
    deploy_url = f"redis://{url.netloc}/{REDIS_DB}"
    client = redis.Redis.from_url(deploy_url)
    deadline = time.monotonic() + 900
    # Expires by itself should a run die without its cleanup.
    while not client.set(REDIS_LOCK, os.getpid(), nx=True, ex=900):
        assert time.monotonic() < deadline, f"Redis database {REDIS_DB} still locked by another test run"
        time.sleep(1)
    leftovers = [key for key in client.scan_iter() if key != REDIS_LOCK.encode()]  # of a run that died
    if leftovers:
        client.delete(*leftovers)
    yield deploy_url
    client.flushdb()
    client.close()


@pytest.fixture(scope="module")
def bucket():
    """moto's S3 server on a loopback port, with an empty bucket; the S3 variables for it."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    variables = {
        "AWS_STORAGE_BUCKET_NAME": BUCKET,
        "AWS_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "deploy-key",
        "AWS_SECRET_ACCESS_KEY": "deploy-secret",
        "AWS_S3_REGION_NAME": "us-east-1",
    }
    client = boto3.client(
        "s3",
        endpoint_url=variables["AWS_S3_ENDPOINT_URL"],
        aws_access_key_id=variables["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=variables["AWS_SECRET_ACCESS_KEY"],
        region_name=variables["AWS_S3_REGION_NAME"],
    )
    client.create_bucket(Bucket=BUCKET)
    yield variables
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)
    server.stop()


@pytest.fixture(scope="module")
def cluster(database_url, redis_url, bucket, tmp_path_factory):
    """What docker/compose.yml runs: migrations, then gunicorn and a worker, all from the environment."""
    from mlcore.weights import save_untrained

    folder = tmp_path_factory.mktemp("cluster")
    env = production_environment(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        **bucket,
        COLORIZER_WEIGHTS=str(save_untrained(folder / "colorizer.safetensors")),
        COLORIZER_DEVICE="cpu",
        COLORIZER_SIZE="64",
        COLORIZER_VAR_DIR=str(folder / "var"),
        WEB_CONCURRENCY="2",
        COLORIZER_WORKER_CONCURRENCY="1",
    )
    manage(env, "migrate", "--no-input")
    manage(env, "collectstatic", "--no-input")  # done when the image is built
    worker = Server(
        "worker",
        [BIN / "celery", "--app", "colorizer_site", "--quiet", "worker", "--queues", "colorize,celery",
         "--hostname", "deploy-test@%h", "--without-mingle", "--without-gossip", "--loglevel", "INFO"],
        env,
        folder,
    )
    web, url = gunicorn(env, folder)
    try:
        wait_until_ready(web, url)
        yield web, worker, url
    finally:
        web.stop()
        worker.stop()


def wait_until_ready(web, url, timeout=90):
    deadline = time.monotonic() + timeout
    while (response := web.wait_until_answering(f"{url}/readyz")).status_code != 200:
        assert time.monotonic() < deadline, f"not ready after {timeout} s: {response.text}\n{web.output()}"
        time.sleep(0.5)


class Browser:
    """A browser behind the load balancer, which ends TLS and says so in X-Forwarded-Proto.

    Cookies are kept by hand: they are Secure, and requests would not send them over http.
    """

    def __init__(self, url):
        self.url = url
        self.origin = f"https://{urlsplit(url).netloc}"
        self.cookies = {}

    def request(self, method, path, headers=(), **kwargs):
        headers = {
            "X-Forwarded-Proto": "https",
            "Origin": self.origin,
            "X-CSRFToken": self.cookies.get("csrftoken", ""),
            **dict(headers),
        }
        response = requests.request(method, self.url + path, headers=headers, cookies=self.cookies,
                                    allow_redirects=False, timeout=30, **kwargs)
        self.cookies.update(response.cookies.get_dict())
        return response


@pytest.fixture(scope="module")
def colorized(cluster):
    """Sign up, upload a photo, wait for its job: the browser and the photo's id."""
    _, _, url = cluster
    browser = Browser(url)
    browser.request("GET", "/accounts/signup/")  # the CSRF cookie
    signup = browser.request("POST", "/accounts/signup/", data={"username": "ada", "password1": PASSWORD,
                                                                 "password2": PASSWORD})
    assert signup.status_code == 302, signup.text

    upload = browser.request("POST", "/upload/", files={"files": ("scan.png", grey_png((120, 80)), "image/png")},
                             headers={"Accept": "application/json"})

    assert upload.status_code == 200, upload.text
    [result] = upload.json()["results"]
    photo_id = result["photo"]["id"]
    deadline = time.monotonic() + 120
    while (state := photo_state(browser, photo_id)) in ("queued", "running"):
        assert time.monotonic() < deadline, f"the job is still {state} after 120 s"
        time.sleep(0.3)
    assert state == "succeeded"
    return browser, photo_id


def photo_state(browser, photo_id):
    return browser.request("GET", f"/photos/status.json?ids={photo_id}").json()["photos"][photo_id]["state"]


def test_an_upload_comes_back_colorized_at_full_size(colorized):
    browser, photo_id = colorized

    response = browser.request("GET", f"/photos/{photo_id}/result.png?download")

    assert response.status_code == 200
    result = Image.open(io.BytesIO(response.content))
    assert (result.format, result.mode, result.size) == ("PNG", "RGB", (120, 80))


def test_the_stack_reports_ready(cluster):
    _, _, url = cluster

    # Probes come over plain HTTP, by IP.
    body = requests.get(f"{url}/readyz", timeout=30).json()

    assert body == {"status": "ready", "checks": dict.fromkeys(["database", "broker", "storage", "weights"], "ok")}


def test_pages_only_over_https(cluster):
    _, _, url = cluster

    plain = requests.get(f"{url}/accounts/login/", allow_redirects=False, timeout=30)
    secure = Browser(url).request("GET", "/accounts/login/")

    assert (plain.status_code, plain.headers["Location"]) == (301, f"https://{urlsplit(url).netloc}/accounts/login/")
    assert secure.status_code == 200
    assert "max-age=31536000" in secure.headers["Strict-Transport-Security"]
    assert all(cookie.secure for cookie in secure.cookies)


def test_static_files_have_hashed_names_and_cache_forever(colorized):
    browser, _ = colorized
    page = browser.request("GET", "/").text
    [stylesheet] = re.findall(r'href="(/static/gallery/style\.[0-9a-f]{12}\.css)"', page)

    response = browser.request("GET", stylesheet, headers={"Accept-Encoding": "gzip"})

    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"  # compressed by collectstatic
    assert "immutable" in response.headers["Cache-Control"]


def test_the_request_and_the_job_each_logged_one_json_line(cluster, colorized):
    web, worker, _ = cluster
    _, photo_id = colorized

    [upload] = [line for line in web.log_lines() if line.get("path") == "/upload/" and line.get("method") == "POST"]
    assert upload["logger"] == "gunicorn.access"
    assert (upload["status"], upload["bytes"] > 0, upload["duration_ms"] > 0) == (200, True, True)

    [job] = wait_for_job_lines(worker, photo_id)
    assert (job["state"], job["task_state"], job["attempts"]) == ("succeeded", "success", 1)
    assert job["queue"] == "colorize"
    assert job["worker"].startswith("deploy-test@")
    assert job["model_version"] and job["duration_ms"] > 0


def wait_for_job_lines(worker, photo_id, timeout=10):
    # The line follows the job's last database update by a moment.
    deadline = time.monotonic() + timeout
    while not (lines := [line for line in worker.log_lines() if line.get("photo_id") == photo_id]):
        assert time.monotonic() < deadline, f"no job line for photo {photo_id}\n{worker.output()}"
        time.sleep(0.2)
    return lines
