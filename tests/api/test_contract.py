"""The API keeps to its own OpenAPI schema: Schemathesis runs every operation against a live server.

`st run` (tests/api/contract/schemathesis.toml) reads the schema from the live server and
generates requests for every operation in it, new ones included: valid and invalid ones,
unexpected methods, chains that follow one answer's ids into the next request (upload, then
the photo, its job, its files, delete). Every check applies to every answer: status declared,
body and headers as documented, invalid data refused and valid data accepted, a deleted photo
gone, credentials required, and Bob never sees Alice's photos. Both log in through the token
endpoint; uploads are real small PNG and JPEG files (contract/hooks.py), which a real worker
colorizes meanwhile. The number of examples and the seed are fixed, so every run generates the
same requests in about the same time (a minute).

Not marked `services`: the contract is the same on SQLite and PostgreSQL, and one run of it is
enough of the suite's time.
"""

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.usefixtures("celery_worker")

CONTRACT = Path(__file__).parent / "contract"
USERS = {"alice": "correct horse battery", "bob": "another good passphrase"}  # conftest's


@pytest.fixture
def unthrottled(settings):
    """The run tests what lies behind the rate limits; test_throttling.py tests the limits."""
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {scope: "100000/minute" for scope in rates},
    }


def log_in(username):
    """A Web Fuzzing Commons entry: Schemathesis gets the user's token from the token endpoint."""
    return {
        "name": username,
        "loginEndpointAuth": {
            "endpoint": "/api/v1/auth/token/",
            "verb": "POST",
            "contentType": "application/json",
            "payloadUserPwd": {
                "username": username, "usernameField": "username",
                "password": USERS[username], "passwordField": "password",
            },
            "token": {
                "extractFrom": "body", "extractSelector": "/token",
                "sendIn": "header", "sendName": "Authorization", "sendTemplate": "Token {token}",
            },
        },
    }


def answers(report):
    """Statuses answered per operation ("GET /api/v1/photos/"), from the run's NDJSON events."""
    statuses = defaultdict(set)
    for line in report.read_text().splitlines():
        scenario = json.loads(line).get("ScenarioFinished", {}).get("recorder", {})
        for case_id, interaction in scenario.get("interactions", {}).items():
            case = scenario["cases"][case_id]["value"]
            statuses[f"{case['method']} {case['path']}"].add(interaction["response"]["status_code"])
    return statuses


def test_the_api_keeps_to_its_schema(live_server, alice, bob, unthrottled, tmp_path):
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"auth": [log_in("alice"), log_in("bob")]}))
    schema_url = f"{live_server.url}/api/schema/?format=json"
    env = {"CONTRACT_BASE_URL": live_server.url, "CONTRACT_AUTH": str(auth), "CONTRACT_HOOKS": str(CONTRACT / "hooks.py")}

    # In tmp_path, where Hypothesis and Schemathesis keep their files.
    done = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONTRACT / "schemathesis.toml"), "--no-color",
         "run", schema_url, "--report", "json,ndjson", "--report-json-path", "run.json",
         "--report-ndjson-path", "run.ndjson"],
        cwd=tmp_path, env={**os.environ, **env}, capture_output=True, text=True, timeout=300,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    run = json.loads((tmp_path / "run.json").read_text())
    # The schema has no examples of its own; every other phase ran.
    assert {name: phase["status"] for name, phase in run["phases"].items()} == {
        "examples": "skip", "coverage": "success", "fuzzing": "success", "stateful": "success"
    }
    assert run["operations"]["tested"] == run["operations"]["total"]
    # Every operation got past the refusals at least once: a broken log-in or upload, answered
    # with a 401 or 400 everywhere, would otherwise leave the checks little to check.
    operations = [
        f"{method.upper()} {path}"
        for path, methods in requests.get(schema_url, timeout=10).json()["paths"].items()
        for method in methods
    ]
    answered = answers(tmp_path / "run.ndjson")
    assert operations and [op for op in operations if not any(200 <= s < 300 for s in answered[op])] == []
