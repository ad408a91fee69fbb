"""Django's Redis cache, except that Redis being away degrades instead of failing requests.

The cache holds the API's throttle counters. While Redis is down or does not answer, every
operation answers as if nothing were stored (a read misses, a write is dropped), so throttles
let requests through rather than turning the outage into 500s; the outage is logged. After a
failure Redis is left alone for a few seconds (colorizer_site.breaker), so that a Redis that
does not answer costs one timeout (REDIS_TIMEOUT) per process now and then, not one per call.
"""

import functools
import logging

from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError, TimeoutError

from .breaker import Breaker

log = logging.getLogger("colorizer_site.cache")
UNAVAILABLE = (ConnectionError, TimeoutError)


def _forgiving(default):
    """Run the operation unless Redis is known to be away; on an outage answer `default(args)`."""

    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            if self.breaker.is_open:
                return default(*args, **kwargs)
            try:
                result = method(self, *args, **kwargs)
            except UNAVAILABLE as exc:
                self.breaker.failed(exc, "the cache answers empty and throttles are not applied")
                return default(*args, **kwargs)
            self.breaker.succeeded()
            return result

        return wrapper

    return decorate


def _nothing(*args, **kwargs):
    return None


def _false(*args, **kwargs):
    return False


def _the_default(key, default=None, *args, **kwargs):
    return default


class ForgivingRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self.breaker = Breaker("Redis (cache)", pause_seconds=5, logger=log)

    get = _forgiving(_the_default)(RedisCache.get)
    set = _forgiving(_nothing)(RedisCache.set)
    add = _forgiving(_false)(RedisCache.add)
    touch = _forgiving(_false)(RedisCache.touch)
    delete = _forgiving(_false)(RedisCache.delete)
    has_key = _forgiving(_false)(RedisCache.has_key)
    get_many = _forgiving(lambda keys, *args, **kwargs: {})(RedisCache.get_many)
    # The keys that could not be stored: all of them.
    set_many = _forgiving(lambda data, *args, **kwargs: list(data))(RedisCache.set_many)
    delete_many = _forgiving(_nothing)(RedisCache.delete_many)
    clear = _forgiving(_false)(RedisCache.clear)
    # As if the key were new: a counter restarts from `delta` while Redis is away.
    incr = _forgiving(lambda key, delta=1, *args, **kwargs: delta)(RedisCache.incr)
