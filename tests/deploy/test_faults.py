"""Real faults on a real stack, each bounded in time: Redis stopped and restarted, Redis not
answering, a worker killed outright, a job delivered twice.

The stack: a redis-server of this module's own on a free port (paused, stopped and restarted
by its PID), gunicorn, celery beat and workers, with the test settings on the test database and
short leases so that recoveries take seconds. PostgreSQL only (the second pass of `make test`):
five processes share the database.
"""

import io
import os
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
import redis
import requests
from celery import Celery
from django.conf import settings
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image
from rest_framework.authtoken.models import Token
from web.helpers import database_url, wait_until_finished

from gallery.models import ColorizationJob, Photo

from .helpers import BIN, Server, free_port, grey_png, gunicorn

pytestmark = pytest.mark.services

LEASE_SECONDS = 2  # renewed every 0.5 s; a dead worker's job is queued again 2 s later
SWEEP_SECONDS = 0.5
RECOVERY_TIMEOUT = 120  # generous, for a loaded machine; the README gives the times measured


@pytest.fixture(scope="module")
def postgres():
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        pytest.skip("needs PostgreSQL: runs in the second pass of `make test` (make test-services)")
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed (make test installs it)")
        pytest.skip("redis-server is not installed")


class RedisServer:
    """redis-server on a free loopback port, as deployed (append-only file, no eviction)."""

    def __init__(self, folder):
        self.folder, self.port, self.process = folder, free_port(), None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
                   "--appendonly", "yes", "--save", "", "--maxmemory-policy", "noeviction"]
        with (self.folder / "redis.log").open("a") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, (self.folder / "redis.log").read_text()
                time.sleep(0.05)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)

    def pause(self):
        """Still accepting connections (the kernel does that), answering nothing: a silent host."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.process.pid, signal.SIGCONT)


@pytest.fixture(scope="module")
def redis_server(postgres, tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.resume()
    if server.process.poll() is None:
        server.stop()


@pytest.fixture(scope="module")
def stack_env(redis_server, weights_file, django_db_setup):
    """What every process of the stack reads: the test run's settings, database and model, this Redis."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "colorizer_site.settings.test",  # and COLORIZER_TEST_RUN_DIR
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_server.url,
        "COLORIZER_WEIGHTS": str(weights_file),
        "COLORIZER_DEVICE": "cpu",
        "COLORIZER_SIZE": "64",
        "COLORIZER_JOB_LEASE_SECONDS": str(LEASE_SECONDS),
        "COLORIZER_SWEEP_INTERVAL": str(SWEEP_SECONDS),
        "WEB_CONCURRENCY": "1",
        "PYTHONUNBUFFERED": "1",
    }


def start_worker(name, env, folder, queues="colorize,celery", concurrency=1):
    """`celery worker` as deployed (prefork pool)."""
    return Server(name, [BIN / "celery", "--app", "colorizer_site", "worker", "--pool", "prefork",
                         "--concurrency", str(concurrency), "--queues", queues, "--hostname", f"{name}@%h",
                         "--without-mingle", "--without-gossip", "--loglevel", "INFO"], env, folder)


def wait_until_ready(worker, timeout=90):
    deadline = time.monotonic() + timeout
    while " ready." not in worker.output():
        assert worker.process.poll() is None and time.monotonic() < deadline, worker.output()
        time.sleep(0.1)


def stop(*servers):
    """Gracefully, all at once (as the container runtime stops a stack)."""
    running = [server for server in servers if server.process.poll() is None]
    for server in running:
        server.process.send_signal(signal.SIGTERM)
    for server in running:
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@pytest.fixture(scope="module")
def stack(stack_env, tmp_path_factory):
    """gunicorn, celery beat (the sweeper's clock) and a worker of two pool processes, started together."""
    folder = tmp_path_factory.mktemp("stack")
    beat = Server("beat", [BIN / "celery", "--app", "colorizer_site", "beat", "--schedule", folder / "beat-schedule",
                           "--loglevel", "INFO"], stack_env, folder)
    worker = start_worker("steady", stack_env, folder, concurrency=2)
    # The web process waits on Redis half as long as by default: what is measured below is that
    # an upload does not hang on a silent Redis, on however loaded a machine.
    web, url = gunicorn({**stack_env, "REDIS_TIMEOUT": "1"}, folder)
    try:
        web.wait_until_answering(f"{url}/healthz")
        wait_until_ready(worker)
        yield Stack(url, web, beat, worker)
    finally:
        stop(web, beat, worker)


class Stack:
    def __init__(self, url, web, beat, worker):
        self.url, self.web, self.beat, self.worker = url, web, beat, worker

    def wait_until_finished(self, jobs):
        """The jobs, once finished; on a timeout, what every process of the stack wrote."""
        try:
            return wait_until_finished(jobs, timeout=RECOVERY_TIMEOUT)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.web.output()}\n{self.beat.output()}\n{self.worker.output()}") from None


class Api:
    def __init__(self, url, user):
        self.url, self.user = url, user
        self.headers = {"Authorization": f"Token {Token.objects.create(user=user).key}"}

    def request(self, method, path, **kwargs):
        return requests.request(method, self.url + path, headers=self.headers, timeout=30, **kwargs)

    def upload(self, name, size=(120, 80), png=None):
        """Upload `png` (bytes), or a grey PNG of `size`."""
        return self.request("POST", "/api/v1/photos/", files={"image": (name, png or grey_png(size), "image/png")})


@pytest.fixture
def api(stack, transactional_db, django_user_model):
    return Api(stack.url, django_user_model.objects.create_user("ada", password="a long enough passphrase"))


def timed(function, *args, **kwargs):
    started = time.monotonic()
    result = function(*args, **kwargs)
    return result, time.monotonic() - started


def job_id(upload):
    assert upload.status_code == 202, upload.text
    return upload.json()["job"]["id"]


def wait_for_state(job, state, timeout=RECOVERY_TIMEOUT):
    deadline = time.monotonic() + timeout
    while ColorizationJob.objects.get(pk=job).state != state:
        assert time.monotonic() < deadline, f"job {job} not {state} after {timeout} s"
        time.sleep(0.05)


def test_uploads_during_a_redis_outage_are_accepted_and_all_run_once_it_is_back(api, redis_server, stack):
    # Redis stops answering (its process paused): the upload and /readyz answer, within 5 s.
    redis_server.pause()
    try:
        with ThreadPoolExecutor(2) as pool:
            upload = pool.submit(timed, api.upload, "during-silence.png")
            probe = pool.submit(timed, requests.get, f"{api.url}/readyz", timeout=30)
            (silent_upload, upload_s), (readyz, readyz_s) = upload.result(), probe.result()
    finally:
        redis_server.resume()
    # Then Redis is down (its port closed).
    redis_server.stop()
    down_upload = api.upload("during-outage.png")
    photo = down_upload.json()["id"]
    again = api.request("POST", f"/api/v1/photos/{photo}/colorize/")
    listing = api.request("GET", "/api/v1/photos/")
    original = api.request("GET", f"/api/v1/photos/{photo}/original")
    jobs = [job_id(silent_upload), job_id(down_upload)]
    unsent = sorted(ColorizationJob.objects.filter(pk__in=jobs, sent_at__isnull=True).values_list("id", flat=True))

    redis_server.start()
    back = time.monotonic()
    finished = stack.wait_until_finished(jobs)
    print(f"outage drill: with Redis silent, an upload answered in {upload_s:.1f} s and /readyz in {readyz_s:.1f} s; "
          f"{len(jobs)} uploads accepted during the outage all ran {time.monotonic() - back:.1f} s after it came back")

    assert upload_s <= 5 and readyz_s <= 5, (upload_s, readyz_s)
    assert readyz.status_code == 503 and readyz.json()["checks"]["broker"] == "failing"
    assert (again.status_code, again.json()["id"]) == (202, jobs[1])  # the same job, not lost
    assert (listing.status_code, listing.json()["count"], original.status_code) == (200, 2, 200)
    assert [str(job) for job in unsent] == sorted(jobs)  # known not to be sent...
    assert [(job.state, job.attempts) for job in finished] == [("succeeded", 1)] * 2  # ...and sent by the sweeper


def pool_processes(worker):
    return [int(pid) for pid in Path(f"/proc/{worker.process.pid}/task/{worker.process.pid}/children")
            .read_text().split()]


def send(redis_server, job, queue):
    """The job's message, sent to `queue` as the stack's own processes would send it."""
    sender = Celery("sender", broker=redis_server.url, set_as_current=False)
    # The stack's settings prefix its keys with the test run (colorizer_site/settings/test.py).
    sender.conf.broker_transport_options = {"global_keyprefix": f"{Path(os.environ['COLORIZER_TEST_RUN_DIR']).name}:"}
    with sender:
        sender.send_task("gallery.tasks.colorize", args=[str(job)], queue=queue)


def queued_job(owner, data):
    """A photo and its job, sent just now (by the test: to a queue of its choosing)."""
    photo = Photo(owner=owner, original_filename="scan.png", sha256="0", byte_size=len(data), width=1, height=1,
                  format="PNG")
    photo.original.save("scan.png", ContentFile(data), save=False)
    photo.save()
    return ColorizationJob.objects.create(photo=photo, sent_at=timezone.now()).id


def test_a_job_whose_worker_is_killed_outright_runs_again_within_the_bound(api, redis_server, stack, stack_env,
                                                                          tmp_path):
    # A worker of its own queue takes the job; the stack's worker is the one still alive after.
    doomed = start_worker("doomed", stack_env, tmp_path, queues="doomed")
    try:
        wait_until_ready(doomed)
        job = queued_job(api.user, grey_png((1600, 1200)))
        send(redis_server, job, "doomed")
        wait_for_state(job, "running")

        # The main process and its pool process at once: a container killed (the OOM killer, a lost machine).
        for pid in [doomed.process.pid, *pool_processes(doomed)]:
            os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        [recovered] = stack.wait_until_finished([job])
        print(f"SIGKILL drill: the job succeeded {time.monotonic() - killed:.1f} s after its worker was killed "
              f"(lease {LEASE_SECONDS} s, sweep every {SWEEP_SECONDS} s)")
    finally:
        stop(doomed)

    assert (recovered.state, recovered.attempts) == ("succeeded", 2)
    assert recovered.lease_holder == ""


def test_a_job_delivered_twice_runs_once(api, redis_server, stack):
    worker = stack.worker
    # Seconds even for the fast pixel path on a warm worker, so the run outlasts its lease: the
    # largest photo allowed, in colour (48 MP of grey took 1.99 s on a quiet machine).
    gradient = Image.linear_gradient("L").resize((8160, 6120))
    scan = io.BytesIO()
    Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT), gradient)).save(scan, "PNG")
    job = job_id(api.upload("scan.png", png=scan.getvalue()))
    wait_for_state(job, "running")

    # The same job's message once more while it runs: what a re-send by the sweeper, or Redis
    # giving an unacknowledged message back, delivers. The worker's other pool process takes it.
    send(redis_server, job, "colorize")
    [finished] = stack.wait_until_finished([job])

    # One run (longer than the lease, which its renewals kept), one result.
    assert (finished.state, finished.attempts) == ("succeeded", 1), worker.output()
    assert finished.finished_at - finished.started_at > timedelta(seconds=LEASE_SECONDS)
    results = sorted((settings.VAR_DIR / "media" / "results").glob(f"{job}*"))
    assert [path.name for path in results] == [f"{job}.png"]
    assert f"job {job} is already running" in worker.output()
