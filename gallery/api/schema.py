"""OpenAPI documentation of the error responses, shared by the views' @extend_schema."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from .serializers import ErrorSerializer

ERROR_DESCRIPTIONS = {
    400: "Invalid request or refused upload; the code says why (e.g. invalid, not_an_image, too_large).",
    401: "No credentials, or a wrong token (not_authenticated, authentication_failed).",
    403: "Signed in by session but no CSRF token sent (permission_denied).",
    404: "Not among your photos and jobs, or no such page (not_found).",
    409: "The photo has no colorized version yet (not_colorized).",
    415: "The upload is not multipart/form-data (unsupported_media_type).",
    429: "Too many uploads (throttled); the Retry-After header says how many seconds to wait.",
}

LOCATION = OpenApiParameter(
    "Location", OpenApiTypes.URI, OpenApiParameter.HEADER, response=[202], description="The job's URL."
)
RETRY_AFTER = OpenApiParameter(
    "Retry-After", OpenApiTypes.INT, OpenApiParameter.HEADER, response=[429], description="Seconds to wait."
)


def errors(*statuses, descriptions=None):
    """Responses for @extend_schema: the given error statuses, each with the error body;
    `descriptions` ({status: text}) replaces the usual description where an operation differs."""
    descriptions = {**ERROR_DESCRIPTIONS, **(descriptions or {})}
    return {
        status: OpenApiResponse(response=ErrorSerializer, description=descriptions[status]) for status in statuses
    }
