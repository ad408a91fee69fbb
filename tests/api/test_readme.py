"""The README's curl walk-through and Python client, run as written against a live server and worker."""

import io
import os
import re
import subprocess
import sys

import pytest
from django.conf import settings
from PIL import Image

from web.helpers import image_bytes

pytestmark = [pytest.mark.services, pytest.mark.usefixtures("celery_worker")]


def readme_example(name):
    """The code block that follows `<!-- readme-test: NAME -->` in README.md."""
    readme = (settings.BASE_DIR / "README.md").read_text()
    match = re.search(rf"<!-- readme-test: {name} -->\n```\w+\n(.*?)```", readme, re.DOTALL)
    assert match, f"README.md has no {name} example"
    return match.group(1)


@pytest.fixture
def folder(tmp_path):
    """Where the reader works: a photo to colorize."""
    (tmp_path / "grandma.jpg").write_bytes(image_bytes("JPEG", size=(90, 60)))
    return tmp_path


@pytest.fixture
def reader_env(live_server, alice):
    return {
        **os.environ,
        "COLORIZER_URL": live_server.url,
        "COLORIZER_USER": "alice",
        "COLORIZER_PASSWORD": "correct horse battery",
    }


def run(command, folder, env):
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def assert_colorized(path):
    image = Image.open(io.BytesIO(path.read_bytes()))
    assert (image.format, image.size, image.mode) == ("PNG", (90, 60), "RGB")


def test_the_curl_walk_through(folder, reader_env):
    # -e, -u and pipefail: any step that fails, fails the test.
    output = run(["bash", "-euo", "pipefail", "-c", readme_example("curl")], folder, reader_env)

    assert output.splitlines()[-1] == "succeeded"
    assert_colorized(folder / "grandma-colorized.png")


def test_the_python_client(folder, reader_env):
    (folder / "colorize.py").write_text(readme_example("python"))

    output = run([sys.executable, "colorize.py", "grandma.jpg"], folder, reader_env)

    assert output == "grandma-colorized.png\n"
    assert_colorized(folder / "grandma-colorized.png")


def test_the_python_client_reports_the_api_error(folder, reader_env):
    (folder / "colorize.py").write_text(readme_example("python"))
    (folder / "notes.jpg").write_bytes(b"not a photo")

    done = subprocess.run(
        [sys.executable, "colorize.py", "notes.jpg"], cwd=folder, env=reader_env, capture_output=True, text=True
    )

    assert done.returncode == 1
    assert done.stderr == "400: notes.jpg is not an image Pillow can read: cannot identify image file\n"
