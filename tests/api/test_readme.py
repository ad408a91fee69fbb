"""The README's curl walk-through and Python client, run as written against a live server and worker.

And the walk-through once more with a client generated from the OpenAPI schema: proof that a
program written from the schema alone understands every answer.
"""

import importlib
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
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


@pytest.fixture
def generated_client(live_server, tmp_path, monkeypatch):
    """The typed client openapi-python-client generates from the live schema, imported from tmp_path.

    Where an operation takes its body in several media types (the token: form, multipart or
    JSON), the client is generated for JSON alone, as a program speaks one of them: the generator
    cannot yet tell several media types of one schema apart (it writes code that does not run).
    """
    schema = requests.get(f"{live_server.url}/api/schema/?format=json", timeout=10).json()
    for operations in schema["paths"].values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            if len(content) > 1 and "application/json" in content:
                operation["requestBody"]["content"] = {"application/json": content["application/json"]}
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    config = Path(__file__).parent / "contract" / "openapi-python-client.yaml"
    run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path", "schema.json", "--meta", "none",
         "--config", str(config), "--output-path", str(tmp_path / "colorizer_client")],
        tmp_path, os.environ,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return importlib.import_module("colorizer_client")


def test_a_client_generated_from_the_schema_understands_the_walk_through(folder, live_server, alice, generated_client):
    from colorizer_client.api.auth import auth_token_create
    from colorizer_client.api.jobs import jobs_retrieve
    from colorizer_client.api.photos import photos_create, photos_result_retrieve
    from colorizer_client.models import AuthTokenRequest, Error, Job, Photo, StateEnum, Token, UploadRequest
    from colorizer_client.types import UNSET, File

    # Any status the schema does not declare raises, and each answer is parsed into its model.
    anonymous = generated_client.Client(base_url=live_server.url, raise_on_unexpected_status=True)

    # 1. The token.
    answer = auth_token_create.sync_detailed(
        client=anonymous, body=AuthTokenRequest(username="alice", password="correct horse battery")
    )
    assert answer.status_code == 200 and isinstance(answer.parsed, Token)
    client = generated_client.AuthenticatedClient(
        base_url=live_server.url, token=answer.parsed.token, prefix="Token", raise_on_unexpected_status=True
    )

    # 2. Upload.
    photo = (folder / "grandma.jpg").read_bytes()
    answer = photos_create.sync_detailed(
        client=client, body=UploadRequest(image=File(payload=io.BytesIO(photo), file_name="grandma.jpg"))
    )
    assert answer.status_code == 202 and isinstance(answer.parsed, Photo)
    job = answer.parsed.job
    assert answer.headers["Location"] == job.url and job.result_url is None

    # 3. Poll with the ETag: a 304 has no body.
    deadline, etag = time.monotonic() + 90, UNSET
    while job.state in (StateEnum.QUEUED, StateEnum.RUNNING):
        assert time.monotonic() < deadline, f"job still {job.state} after 90 s"
        time.sleep(0.2)
        answer = jobs_retrieve.sync_detailed(job.id, client=client, if_none_match=etag)
        if answer.status_code == 304:
            assert answer.parsed is None
        else:
            assert answer.status_code == 200 and isinstance(answer.parsed, Job)
            job, etag = answer.parsed, answer.headers["ETag"]
    assert job.state == StateEnum.SUCCEEDED and job.error is None and job.finished_at is not None

    # 4. The colorized photo.
    answer = photos_result_retrieve.sync_detailed(job.photo, client=client)
    assert answer.status_code == 200 and isinstance(answer.parsed, File)
    assert job.result_url.endswith(f"/api/v1/photos/{job.photo}/result")
    colorized = Image.open(answer.parsed.payload)
    assert (colorized.format, colorized.size) == ("PNG", (90, 60))

    # And a refusal, in the one error shape.
    answer = photos_create.sync_detailed(
        client=client, body=UploadRequest(image=File(payload=io.BytesIO(b"not a photo"), file_name="notes.jpg"))
    )
    assert answer.status_code == 400 and isinstance(answer.parsed, Error)
    assert answer.parsed.error.code == "not_an_image"
