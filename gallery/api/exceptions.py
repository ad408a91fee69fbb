"""One shape for every API error: {"error": {"code": ..., "message": ..., "detail": ...}}.

`code` is for programs and stable, `message` is for people, `detail` is null or gives more
(the errors of each field of an invalid request, the seconds to wait when throttled).
"""

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import JsonResponse
from django.views import defaults
from rest_framework import status
from rest_framework.exceptions import APIException, Throttled, ValidationError
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler

from gallery.services import UploadRejected


class InvalidUpload(APIException):
    """The upload validation's refusal; its code (not_an_image, too_large...) is the error's code."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_upload"


class RequestTooLarge(APIException):
    """Django's limits on form fields (DATA_UPLOAD_MAX_*), which it would answer with an HTML 400."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request has too many or too large form fields."
    default_code = "request_too_large"


class NotColorized(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This photo has not been colorized yet."
    default_code = "not_colorized"


def api_exception_handler(exc, context):
    if isinstance(exc, UploadRejected):
        exc = InvalidUpload(exc.message, exc.code)
    elif isinstance(exc, (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent)):
        exc = RequestTooLarge()
    # DRF's handler picks the status and headers (WWW-Authenticate, Retry-After) and turns
    # Django's Http404 and PermissionDenied into its own; only the body is reshaped here.
    response = exception_handler(exc, context)
    if response is None:
        return None  # not an API error: a bug, left to Django's 500 handling and logging
    if isinstance(exc, ValidationError):
        error = {"code": "invalid", "message": " ".join(_messages(exc.detail)), "detail": exc.detail}
    else:
        detail = response.data["detail"]
        error = {"code": detail.code, "message": str(detail), "detail": None}
        if isinstance(exc, Throttled):
            error["detail"] = {"retry_after": exc.wait}
    response.data = {"error": error}
    return response


def _messages(detail, field=None):
    """Each message of a validation error, prefixed by its field's name."""
    if isinstance(detail, dict):
        for name, value in detail.items():
            yield from _messages(value, name)
    elif isinstance(detail, list):
        for value in detail:
            yield from _messages(value, field)
    elif field and field != api_settings.NON_FIELD_ERRORS_KEY:
        yield f"{field}: {detail}"
    else:
        yield str(detail)


def server_error(request):
    """Django's handler500: a bug under /api/ still answers in the one error shape.

    Django has logged the traceback by now; the client only learns that it wasn't its fault.
    """
    if request.path.startswith("/api/"):
        error = {"code": "server_error", "message": "Something went wrong on our side; try again later.",
                 "detail": None}
        return JsonResponse({"error": error}, status=500)
    return defaults.server_error(request)
