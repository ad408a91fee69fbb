"""Helpers the deployment tests share."""

import io
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from PIL import Image

BASE_DIR = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent


def free_port():
    """A loopback port nothing listens on (for a server to start on, or as a dependency that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def grey_png(size):
    """A black-and-white photo to colorize: a grey gradient."""
    buffer = io.BytesIO()
    Image.linear_gradient("L").resize(size).save(buffer, "PNG")
    return buffer.getvalue()


class Server:
    """A command run the way a container runs it, with its stdout and stderr kept in files."""

    def __init__(self, name, command, env, folder):
        self.name = name
        self.stdout = folder / f"{name}.stdout"
        self.stderr = folder / f"{name}.stderr"
        with self.stdout.open("w") as stdout, self.stderr.open("w") as stderr:
            self.process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=stdout, stderr=stderr)

    def output(self):
        return f"--- {self.name} stdout:\n{self.stdout.read_text()}\n--- {self.name} stderr:\n{self.stderr.read_text()}"

    def log_lines(self):
        """Every line it wrote, stdout then stderr, each parsed as JSON (fails on any other line)."""
        text = self.stdout.read_text() + self.stderr.read_text()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def wait_until_answering(self, url, timeout=60, **kwargs):
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, f"{self.name} exited with {self.process.returncode}\n{self.output()}"
            try:
                return requests.get(url, timeout=5, **kwargs)
            except requests.ConnectionError:
                assert time.monotonic() < deadline, f"{self.name} not answering after {timeout} s\n{self.output()}"
                time.sleep(0.2)

    def stop(self):
        """A graceful stop (SIGTERM), as the container runtime does it."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def gunicorn(env, folder):
    """gunicorn as the web containers run it (docker/Dockerfile), on a free loopback port."""
    port = free_port()
    command = [BIN / "gunicorn", "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "colorizer_site.wsgi"]
    return Server("gunicorn", command, env, folder), f"http://127.0.0.1:{port}"


def production_environment(**variables):
    """The environment of a production container: the settings module and what it requires."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "colorizer_site.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
        **variables,
    }


def manage(env, *arguments, check=True):
    """Run a manage.py command; with check, a failure fails the test and shows the output."""
    result = subprocess.run([sys.executable, "manage.py", *arguments], cwd=BASE_DIR, env=env, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, f"manage.py {' '.join(arguments)} failed:\n{result.stdout}\n{result.stderr}"
    return result
