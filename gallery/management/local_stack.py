"""What the bench commands measure of a stack running on this machine (started in this project's
folder, as `make run` starts it): its processes' CPU time and peak memory, a token to call its
API with, and the percentiles they report."""
import os
from pathlib import Path

from django.conf import settings


def local_token(username):
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user, _ = get_user_model().objects.get_or_create(username=username)
    return Token.objects.get_or_create(user=user)[0].key


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(p / 100 * len(values)) - 1))] if values else float("nan")


def local_processes():
    """(role, pid, /proc folder) of the stack's processes on this machine (Linux): those started
    in this project's folder (as `make run` starts them), role "worker" for Celery workers and
    "web" for runserver and gunicorn."""
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            if int(entry.name) == os.getpid() or Path(os.readlink(entry / "cwd")) != settings.BASE_DIR:
                continue
        except OSError:
            continue
        if b"celery" in command and b" worker" in command:
            yield "worker", int(entry.name), entry
        elif b"runserver" in command or b"gunicorn" in command:
            yield "web", int(entry.name), entry


def local_cpu():
    """{(role, pid): CPU seconds used so far} of the local stack's processes, with that of their
    children that have exited (pool and gunicorn processes replaced after so many requests)."""
    ticks, used = os.sysconf("SC_CLK_TCK"), {}
    for role, pid, entry in local_processes():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[role, pid] = sum(map(int, fields[11:15])) / ticks  # utime, stime, cutime, cstime
    return used


def cpu_used(before, after, role):
    """CPU seconds `role`'s processes used between two local_cpu() readings. A process that
    exited in between is in its parent's reading (the server's master process, or Celery's)."""
    return sum(used for (name, _), used in after.items() if name == role) - sum(
        used for (name, _), used in before.items() if name == role)


def celery_peak_rss():
    """(pid, peak RSS in MB) of each Celery process on this machine."""
    found = []
    for role, pid, entry in local_processes():
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        found += [(pid, int(line.split()[1]) / 1024) for line in status.splitlines()
                  if role == "worker" and line.startswith("VmHWM:")]
    return sorted(found, key=lambda item: -item[1])

