"""Rate limits (REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]); over them: 429 and Retry-After."""

from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from gallery.ratelimits import client_address


class RateFromSettings:
    def get_rate(self):
        # DRF reads the rates once at import; reading them per request lets settings overrides apply.
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]

    def get_ident(self, request):
        # Behind the trusted proxies only: DRF would key on a whole X-Forwarded-For a client wrote.
        return client_address(request)


class UploadsPerMinute(RateFromSettings, UserRateThrottle):
    scope = "uploads_per_minute"


class UploadsPerDay(RateFromSettings, UserRateThrottle):
    scope = "uploads_per_day"


class TokenAttempts(RateFromSettings, AnonRateThrottle):
    """Password guesses through the token endpoint, counted per client address."""

    scope = "token_attempts"


UPLOAD_THROTTLES = (UploadsPerMinute, UploadsPerDay)


def upload_wait(request):
    """Count one upload against the user's quotas; the seconds to wait when over one, else None.

    The upload page calls this for each file, the API for each request: the same counters, so a
    user's uploads add up whichever way they come.
    """
    throttles = [throttle() for throttle in UPLOAD_THROTTLES]
    # Each throttle counts the upload, as DRF's own check does, even when another refuses it.
    refused = [throttle for throttle in throttles if not throttle.allow_request(request, None)]
    if not refused:
        return None
    # wait() has no answer when a lowered rate left more in the history than it allows now.
    return max(throttle.wait() or throttle.duration for throttle in refused)
