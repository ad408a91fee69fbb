"""Token authentication with the tokens' lifetime (COLORIZER_API_TOKEN_DAYS)."""

from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from gallery import services


class ExpiringTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if services.token_has_expired(token):
            raise AuthenticationFailed(
                "This token has expired. Get a new one from /api/v1/auth/token/ or your profile page."
            )
        return user, token
