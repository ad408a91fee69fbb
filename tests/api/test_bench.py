"""The speed commands that drive a running stack: bench_web against a live server, and the CPU
accounting it shares with bench_stack. What they print is checked, not how fast anything was."""

import io
import re

import pytest
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

from gallery.management.commands.bench_web import Target, _load
from gallery.management.local_stack import cpu_used

ROW = re.compile(r"^\| (?P<endpoint>[^|]+) \| (?P<rate>\d+) \| (?P<p50>[\d.]+) \| (?P<p95>[\d.]+) \| (?P<p99>[\d.]+) "
                 r"\| (?P<errors>\d+) \| (?P<client>[\d.]+) cores \| (?P<web>[^|]+) \|$")


def bench_web(**options):
    out = io.StringIO()
    call_command("bench_web", stdout=out, **options)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_bench_web_loads_job_polls_and_the_photo_list(live_server, alice, photo):
    token = Token.objects.get_or_create(user=alice)[0].key
    job = photo.jobs.get()

    output = bench_web(url=live_server.url, token=token, clients=3, processes=2, seconds=0.5)

    header, *rows = [line for line in output.splitlines() if line.startswith("|")]
    assert header == "| endpoint | req/s | p50 ms | p95 ms | p99 ms | errors | client CPU | web CPU per request |"
    rows = [ROW.match(line) for line in rows[1:]]  # after the |---| line
    assert all(rows), output
    assert [row["endpoint"] for row in rows] == [
        "job poll, If-None-Match (304)", "job poll, plain GET (200)", "photo list, page of 1 (200)"]
    for row in rows:
        assert int(row["rate"]) > 0 and row["errors"] == "0", output
        assert float(row["p50"]) <= float(row["p95"]) <= float(row["p99"])
    first_line = output.splitlines()[0]
    assert first_line.startswith(f"3 keep-alive clients (2 processes of threads), 0.5 s per endpoint, to {live_server.url}")
    assert f"job {job.id} (succeeded)" in first_line


@pytest.mark.django_db(transaction=True)
def test_answers_other_than_the_expected_one_are_errors(live_server, alice, photo):
    target = Target(live_server.url, Token.objects.get_or_create(user=alice)[0].key)

    # Without If-None-Match a poll answers 200: a load that expects 304 counts each as an error.
    result = _load(target, f"/jobs/{photo.jobs.get().id}/", {}, 304, clients=2, seconds=0.3)

    assert result["latencies"] == [] and result["errors"]
    assert all(error.startswith("200 b'{\"id\":") for error in result["errors"])


def test_bench_web_needs_photos_to_load(live_server, alice):
    token = Token.objects.get_or_create(user=alice)[0].key

    with pytest.raises(CommandError, match="the token's user has no photos at .*: upload some first"):
        bench_web(url=live_server.url, token=token, seconds=0.1)


def test_bench_web_refuses_a_bad_token_and_bad_options(live_server):
    with pytest.raises(CommandError, match=r"GET /api/v1/photos/: 401"):
        bench_web(url=live_server.url, token="not-a-token", seconds=0.1)
    with pytest.raises(CommandError, match="--url must be an http:// or https:// address, not 'ftp://x'"):
        bench_web(url="ftp://x", token="t")
    with pytest.raises(CommandError, match="--clients, --processes and --seconds must be positive"):
        bench_web(url=live_server.url, token="t", clients=0)


def test_cpu_used_counts_a_replaced_process_once():
    # Process 2 exited in between: its time is now in its parent's (1) reading.
    before = {("web", 1): 5.0, ("web", 2): 3.0, ("worker", 7): 100.0}
    after = {("web", 1): 9.0, ("web", 3): 0.5, ("worker", 7): 101.0}

    assert cpu_used(before, after, "web") == pytest.approx(1.5)
    assert cpu_used(before, after, "worker") == pytest.approx(1.0)
