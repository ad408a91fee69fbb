"""Speed of a running stack, as its users see it: `make bench`, or

    manage.py bench_stack --url http://127.0.0.1:8000 --photos 40 --megapixels 1
    manage.py bench_stack --url https://colorizer.example --token TOKEN --photos 200 --clients 16

Starts nothing: it drives a stack that runs already (`make run`, or gunicorn and workers). It
makes N synthetic scans (mlcore.bench.synthetic_scan, JPEG, each different), uploads them all at
once through the REST API (--clients uploads at a time, as the upload page sends them), polls
the photo list until every job has finished, and prints photos/s, the median and 95th
percentile of the job time (started -> finished, by the server's clock) and of upload-to-result
(from the start of the upload until the result was stored), and the peak memory of the Celery
processes when they run on this machine (started in this folder, as `make run` does), with the
CPU seconds the worker and the web server spent per photo. The photos are deleted afterwards (--keep keeps them).

Without --token it signs in as --user (default "bench"), creating that user and its token in
this settings' database: that is the stack's own database for `make run`.
"""
import concurrent.futures
import io
import json
import os
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from ..local_stack import celery_peak_rss, cpu_used, local_cpu, local_token, percentile

FINISHED = ("succeeded", "failed")


class Command(BaseCommand):
    help = "Upload N photos to a running stack through the API and print its throughput and latencies."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the stack's address")
        parser.add_argument("--photos", type=int, default=40)
        parser.add_argument("--megapixels", type=float, default=1.0, help="size of each scan")
        parser.add_argument("--clients", type=int, default=4, help="uploads in flight at once")
        parser.add_argument("--token", help="an API token (default: --user's, made in this database)")
        parser.add_argument("--user", default="bench")
        parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the jobs")
        parser.add_argument("--keep", action="store_true", help="keep the photos instead of deleting them")

    def handle(self, *args, **opts):
        api = Api(opts["url"].rstrip("/") + "/api/v1", opts["token"] or local_token(opts["user"]))
        scans = _scans(opts["photos"], opts["megapixels"])
        self.stdout.write(f"{len(scans)} scans of {opts['megapixels']:g} MP ({len(scans[0]) / 1e6:.2f} MB JPEG each), "
                          f"{opts['clients']} uploads at a time, to {opts['url']}")
        uploads = {}  # photo id -> (seconds the upload took, its job id)
        cpu_before = local_cpu()
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(opts["clients"]) as pool:
            for photo_id, took, job_id in pool.map(api.upload, scans):
                uploads[photo_id] = took, job_id
        uploaded = time.perf_counter() - start
        jobs = self._wait(api, uploads, start, opts["timeout"])
        elapsed = max(seen for _, seen in jobs.values())
        self._report(jobs, uploads, uploaded, elapsed)
        self._report_cpu(cpu_before, local_cpu(), len(jobs))
        if not opts["keep"]:
            with concurrent.futures.ThreadPoolExecutor(opts["clients"]) as pool:
                list(pool.map(api.delete, uploads))

    def _wait(self, api, uploads, start, timeout):
        """Poll the list (one request for up to 100 photos) until every job has finished."""
        jobs = {}
        while len(jobs) < len(uploads):
            if time.perf_counter() - start > timeout:
                raise CommandError(f"{len(uploads) - len(jobs)} jobs still unfinished after {timeout:g} s")
            time.sleep(0.2)
            for photo in api.photos(len(uploads)):
                if photo["id"] in uploads and photo["id"] not in jobs and photo["job"]["state"] in FINISHED:
                    jobs[photo["id"]] = photo["job"], time.perf_counter() - start
        return jobs

    def _report(self, jobs, uploads, uploaded, elapsed):
        failed = [job for job, _ in jobs.values() if job["state"] == "failed"]
        run = [_seconds(job["started_at"], job["finished_at"]) for job, _ in jobs.values()]
        # The upload's own time, then queued -> finished by the server's clock.
        to_result = [uploads[photo_id][0] + _seconds(job["queued_at"], job["finished_at"])
                     for photo_id, (job, _) in jobs.items()]
        self.stdout.write(f"uploads done after {uploaded:.1f} s; all {len(jobs)} jobs finished after {elapsed:.1f} s"
                          + (f" ({len(failed)} failed: {failed[0]['error']})" if failed else ""))
        self.stdout.write(f"throughput       {len(jobs) / elapsed:.2f} photos/s")
        self.stdout.write(f"job run time     p50 {percentile(run, 50):.2f} s, p95 {percentile(run, 95):.2f} s")
        self.stdout.write(f"upload-to-result p50 {percentile(to_result, 50):.2f} s, p95 {percentile(to_result, 95):.2f} s")
        rss = celery_peak_rss()
        self.stdout.write("worker peak RSS  " + (", ".join(f"{mb:.0f} MB (pid {pid})" for pid, mb in rss)
                                                 if rss else "n/a (no Celery process on this machine)"))


    def _report_cpu(self, before, after, count):
        # On a busy machine wall-clock rates say little; CPU seconds per photo say what the stack
        # needs, and so how many photos/s the machine's cores could do.
        for role in ("worker", "web"):
            used = cpu_used(before, after, role)
            if used:
                cores = len(os.sched_getaffinity(0))
                self.stdout.write(f"{role + ' CPU':17s}{used / count:.3f} CPU-s per photo "
                                  f"(all {cores} cores for it alone: {count * cores / used:.1f} photos/s)")


class Api:
    def __init__(self, root, token):
        self.root, self.headers = root, {"Authorization": f"Token {token}"}

    def _request(self, method, url, body=None, headers=None):
        request = urllib.request.Request(url, data=body, method=method, headers={**self.headers, **(headers or {})})
        while True:
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    return json.loads(response.read() or b"null")
            except urllib.error.HTTPError as error:
                if error.code != 429:  # the upload limit: wait as told, then go on
                    raise CommandError(f"{method} {url}: {error.code} {error.read()[:300]!r}") from None
                time.sleep(float(error.headers.get("Retry-After", 1)))

    def upload(self, jpeg):
        boundary = uuid.uuid4().hex
        body = (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="scan.jpg"\r\n'
                f"Content-Type: image/jpeg\r\n\r\n").encode() + jpeg + f"\r\n--{boundary}--\r\n".encode()
        start = time.perf_counter()
        photo = self._request("POST", f"{self.root}/photos/", body,
                              {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        return photo["id"], time.perf_counter() - start, photo["job"]["id"]

    def photos(self, count):
        return self._request("GET", f"{self.root}/photos/?page_size={min(100, max(1, count))}")["results"]

    def delete(self, photo_id):
        self._request("DELETE", f"{self.root}/photos/{photo_id}/")


def _scans(count, megapixels):
    from mlcore.bench import synthetic_scan

    width = max(1, round((megapixels * 1e6 * 4 / 3) ** 0.5))
    height = max(1, round(megapixels * 1e6 / width))
    scans = []
    for seed in range(count):
        buffer = io.BytesIO()
        synthetic_scan(width, height, seed=seed).save(buffer, "JPEG", quality=90)
        scans.append(buffer.getvalue())
    return scans


def _seconds(start, end):
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
