"""Rate limits (REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]); over them: 429 and Retry-After."""

from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


class RateFromSettings:
    def get_rate(self):
        # DRF reads the rates once at import; reading them per request lets settings overrides apply.
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]


class UploadsPerMinute(RateFromSettings, UserRateThrottle):
    scope = "uploads_per_minute"


class UploadsPerDay(RateFromSettings, UserRateThrottle):
    scope = "uploads_per_day"


class TokenAttempts(RateFromSettings, AnonRateThrottle):
    """Password guesses through the token endpoint, counted per client address."""

    scope = "token_attempts"
