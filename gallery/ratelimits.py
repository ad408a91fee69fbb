"""Limits on guessing passwords and opening accounts, and the client address every limit is keyed on.

The REST API's own throttles (gallery.api.throttling) count uploads and token requests; the
counters here are for what a browser does: failed log-ins (web, admin and API token alike) per
client address and per account, and sign-ups per address. They live in Django's cache, so every
web process shares them when the cache is Redis.
"""

import hashlib
import ipaddress
import math
import time

from django.conf import settings
from django.core.cache import cache


def client_address(request):
    """The address the request came from, as the nearest of the trusted proxies saw it.

    Each proxy in front of the app appends the address it was connected from to X-Forwarded-For,
    so with TRUSTED_PROXIES = N the client is the Nth address from the right; whatever a client
    writes into the header itself stays to the left of it and is never used. With no trusted
    proxy the header is ignored. An IPv6 client is counted by its /64 network: one host usually
    has all of it, so a new address per request must not mean a new count.
    """
    address = request.META.get("REMOTE_ADDR", "")
    if settings.TRUSTED_PROXIES:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if forwarded:
            address = forwarded[-min(settings.TRUSTED_PROXIES, len(forwarded))]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6 and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network((ip, 64), strict=False))
    return str(getattr(ip, "ipv4_mapped", None) or ip)


def login_wait(request, username):
    """Seconds before a log-in may be tried again from this address or for this account; 0: now.

    Checked before the password is: once locked out, even the right password waits, so a guesser
    cannot tell a hit from the lock.
    """
    limits = ((_address_key(request), settings.COLORIZER_LOGIN_FAILURES_PER_ADDRESS),
              (_account_key(username), settings.COLORIZER_LOGIN_FAILURES_PER_ACCOUNT))
    return max((_seconds_left(name, _login_period()) for name, limit in limits if _count(name) >= limit), default=0)


def note_failed_login(request, username):
    if request is not None:
        _add(_address_key(request), _login_period())
    _add(_account_key(username), _login_period())


def forget_failed_logins(username):
    """After a successful log-in the account's own count starts again (the address's does not)."""
    cache.delete_many([_key(_account_key(username)), _key(_account_key(username), "since")])


def signup_wait(request):
    """Count one sign-up attempt from the request's address; the seconds to wait when over the limit, else 0."""
    name = f"signup:{client_address(request)}"
    if _add(name, 3600) > settings.COLORIZER_SIGNUPS_PER_HOUR:
        return _seconds_left(name, 3600)
    return 0


def wait_text(seconds):
    """"12 seconds", "5 minutes", "3 hours": how long to wait, for people."""
    for unit, length in (("hour", 3600), ("minute", 60)):
        if seconds >= 2 * length:
            count = math.ceil(seconds / length)
            return f"{count} {unit}s"
    seconds = math.ceil(seconds)
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def _address_key(request):
    return f"login-address:{client_address(request)}"


def _account_key(username):
    # Hashed: usernames may hold characters a cache key must not (memcached), and case-folded,
    # so that "Alice" and "alice" share one count.
    return "login-account:" + hashlib.sha256(str(username or "").strip().casefold().encode()).hexdigest()


def _login_period():
    return settings.COLORIZER_LOGIN_LOCKOUT_MINUTES * 60


# A count lives for `period` seconds from its first event (then starts again from zero); its
# start is kept beside it, to say how long a refused client must wait.
def _count(name):
    return cache.get(_key(name), 0)


def _add(name, period):
    """Add one event to the count of `name`; returns the new count."""
    if cache.add(_key(name), 0, timeout=period):
        cache.set(_key(name, "since"), time.time(), timeout=period)
    try:
        return cache.incr(_key(name))  # atomic in Redis: concurrent requests never lose a count
    except ValueError:  # expired between add and incr
        cache.set(_key(name), 1, timeout=period)
        return 1


def _seconds_left(name, period):
    since = cache.get(_key(name, "since"), time.time())
    return max(1, math.ceil(since + period - time.time()))


def _key(name, part="count"):
    return f"ratelimit:{name}:{part}"
