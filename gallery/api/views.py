"""API views: each checks the request and hands the action to gallery.services.

Photos and jobs are looked up among the user's own only, so someone else's answers 404 exactly
like a missing one.
"""

import hashlib

from django.contrib.auth.decorators import login_not_required
from django.http import FileResponse
from django.utils.cache import get_conditional_response, patch_cache_control, quote_etag
from django.utils.decorators import method_decorator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import NotFound, Throttled
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from gallery import ratelimits, services
from gallery.request_size import accepts_uploads
from gallery.views import CONTENT_TYPES, result_filename

from .exceptions import NotColorized
from .negotiation import ImageDownloadNegotiation
from .schema import LOCATION, errors
from .serializers import (
    ColorizeSettingsSerializer,
    JobSerializer,
    PaletteSerializer,
    PalettePointSerializer,
    PhotoFilterSerializer,
    PhotoSerializer,
    TokenSerializer,
    UploadSerializer,
)
from .throttling import UPLOAD_THROTTLES, TokenAttempts

# The API authenticates each request itself (token or session) and answers 401, where the web
# app's LoginRequiredMiddleware would redirect to the log-in page.
no_login_redirect = method_decorator(login_not_required, name="dispatch")


@no_login_redirect
@extend_schema(tags=["auth"], request=AuthTokenSerializer, responses={200: TokenSerializer})
class ObtainToken(ObtainAuthToken):
    """Your API token for your username and password (created on first use, reset on your profile page)."""

    authentication_classes = []  # the credentials are in the body
    throttle_classes = [TokenAttempts]

    def post(self, request, *args, **kwargs):
        username = request.data.get("username", "") if hasattr(request.data, "get") else ""
        # The same count of failures as the web and admin log-ins: guesses add up across all three.
        if wait := ratelimits.login_wait(request, username):
            raise Throttled(wait, "Too many failed log-ins for this account or from your network.")
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        ratelimits.forget_failed_logins(username)
        return Response({"token": services.api_token_of(serializer.validated_data["user"]).key})


class OwnPhotos:
    def get_queryset(self):
        return services.photos_of(self.request.user)


@no_login_redirect
@method_decorator(accepts_uploads(1), name="dispatch")
@extend_schema_view(
    get=extend_schema(
        summary="Your photos, newest first",
        parameters=[PhotoFilterSerializer],
        responses={200: PhotoSerializer(many=True)},
    ),
    post=extend_schema(
        summary="Upload a photo; it is queued to be colorized",
        description="The same validation as the upload page. `Location` points at the job.",
        request={"multipart/form-data": UploadSerializer},
        parameters=[LOCATION],
        responses={202: PhotoSerializer},
    ),
)
class PhotoList(generics.ListAPIView):
    serializer_class = PhotoSerializer
    parser_classes = [MultiPartParser]

    def get_queryset(self):
        filters = PhotoFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return services.photos_of(self.request.user, **filters.validated_data)

    def get_throttles(self):
        return [throttle() for throttle in UPLOAD_THROTTLES] if self.request.method == "POST" else []

    def post(self, request):
        upload = UploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        photo = services.upload_photo(request.user, upload.validated_data["image"])
        data = self.get_serializer(photo).data
        return _accepted(data, job_url=data["job"]["url"])


@no_login_redirect
@extend_schema_view(
    get=extend_schema(summary="One of your photos", responses={200: PhotoSerializer}),
    delete=extend_schema(
        summary="Delete a photo, its jobs and every stored file", responses={204: None}
    ),
)
class PhotoDetail(OwnPhotos, generics.RetrieveDestroyAPIView):
    serializer_class = PhotoSerializer

    def perform_destroy(self, photo):
        services.delete_photo(photo)


@no_login_redirect
class PhotoColorize(OwnPhotos, generics.GenericAPIView):
    serializer_class = JobSerializer

    @extend_schema(
        summary="Colorize a photo again, with a colour strength and colour hints",
        description=(
            "Each call makes a new job with these settings, recorded on it; the photo's result is the "
            "newest job's once it succeeds. With no body: the model's own colours. If a job with the "
            "same settings is already queued or running, that job is answered (no new one). `hints` "
            "are in pixels of the upright photo (after EXIF rotation), as `width` and `height` count "
            "them. `Location` points at the job."
        ),
        request=ColorizeSettingsSerializer,
        parameters=[LOCATION],
        responses={
            202: JobSerializer,
            **errors(400, 409, descriptions={
                400: "Invalid settings (code invalid); `detail` names each bad field, e.g. "
                     '`{"hints": {"1": {"x": ["..."]}}}` for the second hint, and `message` says '
                     "`hints[1].x: ...`.",
                409: "A job with other settings is still queued or running: wait for it (busy).",
            }),
        },
    )
    def post(self, request, pk):
        photo = self.get_object()
        chosen = ColorizeSettingsSerializer(data=request.data, context={"photo": photo})
        chosen.is_valid(raise_exception=True)
        job = services.colorize_photo(photo, **chosen.validated_data)
        data = self.get_serializer(job).data
        return _accepted(data, job_url=data["url"])


@no_login_redirect
class PhotoPalette(OwnPhotos, generics.GenericAPIView):
    serializer_class = PaletteSerializer

    @extend_schema(
        summary="The model's plausible colours at a point: an eyedropper's palette for a colour hint",
        description=(
            "From the newest result (made with that job's hints): the few colours the model finds "
            "most likely at pixel (x, y) of the upright photo, each with its probability."
        ),
        parameters=[PalettePointSerializer],
        responses={
            200: PaletteSerializer,
            **errors(400, 409, descriptions={
                400: "x or y missing, or outside the photo; `detail` names it (code invalid).",
                409: "No result yet (not_colorized), or a result older than colour proposals (no_palette).",
            }),
        },
    )
    def get(self, request, pk):
        photo = self.get_object()
        point = PalettePointSerializer(data=request.query_params, context={"photo": photo})
        point.is_valid(raise_exception=True)
        x, y = point.validated_data["x"], point.validated_data["y"]
        return Response(self.get_serializer({"x": x, "y": y, "colors": services.palette_at(photo, x, y)}).data)


def _accepted(data, job_url):
    # str(): serializers give URLs as Hyperlink, a str subclass that WSGI servers refuse in headers.
    return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": str(job_url)})


@no_login_redirect
class PhotoOriginal(OwnPhotos, generics.GenericAPIView):
    content_negotiation_class = ImageDownloadNegotiation

    @extend_schema(
        summary="The original, exactly as uploaded",
        responses={(200, "image/*"): OpenApiTypes.BINARY},
    )
    def get(self, request, pk):
        photo = self.get_object()
        return _image_response(photo.original, photo.original_filename, CONTENT_TYPES[photo.format])


@no_login_redirect
class PhotoResult(OwnPhotos, generics.GenericAPIView):
    content_negotiation_class = ImageDownloadNegotiation

    @extend_schema(
        summary="The newest colorized version (PNG, the original's full resolution)",
        responses={(200, "image/png"): OpenApiTypes.BINARY, **errors(409)},
    )
    def get(self, request, pk):
        photo = self.get_object()
        job = photo.latest_result_job
        if job is None:
            raise NotColorized()
        return _image_response(job.result, result_filename(photo, ".png"), "image/png")


def _image_response(stored_file, filename, content_type):
    response = FileResponse(stored_file.open("rb"), filename=filename, content_type=content_type)
    patch_cache_control(response, private=True)
    return response


@no_login_redirect
class JobDetail(generics.RetrieveAPIView):
    serializer_class = JobSerializer

    def get_queryset(self):
        return services.jobs_of(self.request.user)

    @extend_schema(
        summary="A colorization job: poll it until it has succeeded or failed",
        parameters=[
            OpenApiParameter(
                "If-None-Match", OpenApiTypes.STR, OpenApiParameter.HEADER, description="The ETag of your last copy."
            ),
            OpenApiParameter("ETag", OpenApiTypes.STR, OpenApiParameter.HEADER, response=[200, 304], required=True),
        ],
        responses={
            200: JobSerializer,
            304: OpenApiResponse(description="Unchanged since the ETag given in If-None-Match."),
        },
    )
    def get(self, request, pk):
        job = self.get_object()
        # From the fields the body is made of (and the address its URLs start with), so that an
        # unchanged job (most polls) answers 304 without being serialized.
        etag = quote_etag(hashlib.sha256(repr(_job_version(job, request)).encode()).hexdigest())
        response = get_conditional_response(request, etag=etag) or Response(self.get_serializer(job).data)
        response["ETag"] = etag
        return response


# Bump when JobSerializer's output changes shape, so that cached copies are refreshed.
JOB_BODY_VERSION = 2


def _job_version(job, request):
    fields = [getattr(job, name) for name in ("id", "photo_id", "state", "model_version", "attempts", "queued_at",
                                               "started_at", "finished_at")]
    error = job.error if job.state == job.State.FAILED else None  # as the serializer shows it
    return JOB_BODY_VERSION, request.build_absolute_uri("/"), error, *fields


@no_login_redirect
@extend_schema(exclude=True)
class NoSuchEndpoint(APIView):
    """Unknown URLs under /api/ answer the API's JSON 404, not the web app's page."""

    permission_classes = []

    def get(self, request):
        raise NotFound("There is no API endpoint at this URL.")

    post = put = patch = delete = get
