"""OpenAPI documentation of the API: every operation with each error status it can answer.

`ApiSchema` (REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]) adds to each operation the error responses
that follow from how its view is set up, each with the one error body (ErrorSerializer), so that a
new endpoint is documented completely without listing them. A status that only the view itself
knows about (409 not_colorized) is declared in its @extend_schema with `errors()`.
tests/api/test_contract.py holds the API to this schema with Schemathesis.
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.authentication import SessionAuthentication
from rest_framework.parsers import FormParser, MultiPartParser

from .negotiation import ImageDownloadNegotiation
from .serializers import ErrorSerializer

ERROR_DESCRIPTIONS = {
    400: "Invalid request or refused upload; the code says why (e.g. invalid, parse_error, not_an_image, too_large).",
    401: "No credentials, or a wrong token (not_authenticated, authentication_failed).",
    403: "Signed in by session but no CSRF token sent (permission_denied).",
    404: "Not among your photos and jobs, or no such page (not_found).",
    406: "The Accept header asks for something other than JSON (not_acceptable).",
    409: "The photo has no colorized version yet (not_colorized).",
    413: "The request is too large: a body over one file of the upload size limit, refused unread (too_large), "
         "or too many or too large form fields (request_too_large).",
    415: "The request body is not of a media type this operation takes (unsupported_media_type).",
    429: "Too many uploads or failed log-ins (throttled); the Retry-After header says how many seconds to wait.",
}

# Always sent with these statuses, so declared as required.
ERROR_HEADERS = {
    401: {
        "WWW-Authenticate": {
            "schema": {"type": "string"},
            "required": True,
            "description": "How to authenticate: `Token`.",
        }
    },
    429: {"Retry-After": {"schema": {"type": "integer"}, "required": True, "description": "Seconds to wait."}},
}

LOCATION = OpenApiParameter(
    "Location", OpenApiTypes.URI, OpenApiParameter.HEADER, response=[202], required=True, description="The job's URL."
)


def errors(*statuses):
    """Responses for @extend_schema: the given error statuses, each with the error body."""
    return {
        status: OpenApiResponse(response=ErrorSerializer, description=ERROR_DESCRIPTIONS[status])
        for status in statuses
    }


class ApiSchema(AutoSchema):
    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation["responses"]
        for status, response in errors(*self.error_statuses(operation)).items():
            responses.setdefault(str(status), self._get_response_for_code(response, str(status)))
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def error_statuses(self, operation):
        """The error statuses that DRF, the view's settings and the exception handler can answer."""
        view = self.view
        request = view.request
        statuses = set()
        authenticators = view.get_authenticators()
        if authenticators:
            # A wrong token is refused even where no permission is needed; without credentials DRF
            # answers 401 when the first authenticator names a scheme, 403 otherwise.
            statuses.add(401 if authenticators[0].authenticate_header(request) else 403)
            if self.method not in ("GET", "HEAD", "OPTIONS") and any(
                isinstance(authenticator, SessionAuthentication) for authenticator in authenticators
            ):
                statuses.add(403)  # CSRF check of a session
        paginator = self._get_paginator()
        parameters = operation.get("parameters", [])
        if any(parameter["in"] == "path" for parameter in parameters) or (paginator and self._is_list_view()):
            statuses.add(404)  # no such object, or a page past the end
        if any(parameter["in"] == "query" for parameter in parameters):
            statuses.add(400)
        if "requestBody" in operation:
            statuses.update((400, 415))  # invalid or unparsable; a media type it does not take
            if any(isinstance(parser, (FormParser, MultiPartParser)) for parser in view.get_parsers()):
                statuses.add(413)  # Django's limits on form fields
        if not isinstance(view.get_content_negotiator(), ImageDownloadNegotiation):
            statuses.add(406)
        if view.get_throttles():
            statuses.add(429)
        return sorted(statuses)

    def _get_response_headers_for_code(self, status_code, direction="response"):
        headers = super()._get_response_headers_for_code(status_code, direction)
        return {**ERROR_HEADERS.get(int(status_code), {}), **headers}
