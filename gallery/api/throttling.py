"""Per-user limits on uploads (REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]); over them: 429 and Retry-After."""

from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle


class UploadThrottle(UserRateThrottle):
    def get_rate(self):
        # DRF reads the rates once at import; reading them per request lets settings overrides apply.
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]


class UploadsPerMinute(UploadThrottle):
    scope = "uploads_per_minute"


class UploadsPerDay(UploadThrottle):
    scope = "uploads_per_day"
