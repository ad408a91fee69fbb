"""A circuit breaker: after a dependency fails, leave it alone for a few seconds.

While Redis is down or does not answer, each call to it costs a connect or socket timeout.
Without a pause, every upload and every throttled API request would pay it (several times:
throttles read and write the cache, publishing retries once). With one, a process pays it once
per pause and answers at once in between; the first call after the pause tries again.
"""

import logging
import threading
import time


class Breaker:
    def __init__(self, name, pause_seconds, logger):
        self.name = name
        self.pause_seconds = pause_seconds
        self.logger = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
        self._closed_at = 0.0  # monotonic time from which calls go through again
        self._lock = threading.Lock()

    @property
    def is_open(self):
        """True while calls should not be tried."""
        return time.monotonic() < self._closed_at

    def failed(self, exc, consequence):
        """Note a failure (logged once per pause, with its traceback) and open the breaker."""
        with self._lock:
            already_open = self.is_open
            self._closed_at = time.monotonic() + self.pause_seconds
        if not already_open:
            self.logger.warning(
                "%s unavailable (%s: %s); %s. Not tried again for %g s.",
                self.name, type(exc).__name__, exc, consequence, self.pause_seconds, exc_info=exc,
            )

    def succeeded(self):
        self._closed_at = 0.0

    def reset(self):
        self._closed_at = 0.0
