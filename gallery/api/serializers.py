import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.reverse import reverse

from gallery.models import ColorizationJob, Photo

_ANY_ID = str(uuid.UUID(int=0))


def url_for(context, view_name, object_id):
    """The absolute URL of an API view that takes one id, as reverse() gives it.

    reverse() was half of a photo list's time (six URLs per photo): it runs once per view and
    request here, and every other URL is that one with the id put in.
    """
    templates = context.setdefault("url_templates", {})  # one context per response
    if view_name not in templates:
        templates[view_name] = reverse(view_name, args=[_ANY_ID], request=context["request"])
    return templates[view_name].replace(_ANY_ID, str(object_id))


@extend_schema_field(OpenApiTypes.URI)
class IdUrlField(serializers.Field):
    """The URL of `view_name` for the object's `attribute` (its id by default), read only."""

    def __init__(self, view_name, attribute="pk", **kwargs):
        self.view_name, self.attribute = view_name, attribute
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, instance):
        return url_for(self.context, self.view_name, getattr(instance, self.attribute))


class JobSerializer(serializers.ModelSerializer):
    url = IdUrlField("api:job-detail")
    photo = serializers.UUIDField(source="photo_id", read_only=True)
    photo_url = IdUrlField("api:photo-detail", attribute="photo_id")
    error = serializers.SerializerMethodField(help_text="Why the job failed; null unless it failed.")
    result_url = serializers.SerializerMethodField(help_text="The colorized photo (PNG); null until the job succeeded.")

    class Meta:
        model = ColorizationJob
        fields = [
            "id", "url", "photo", "photo_url", "state", "error", "result_url", "model_version", "attempts",
            "queued_at", "started_at", "finished_at",
        ]
        read_only_fields = fields  # an answer only: every field is always sent

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_error(self, job):
        # While a job is retried its last error is kept for the record, but it has not failed.
        return job.error if job.state == ColorizationJob.State.FAILED else None

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_result_url(self, job):
        if job.state != ColorizationJob.State.SUCCEEDED:
            return None
        return url_for(self.context, "api:photo-result", job.photo_id)


class PhotoSerializer(serializers.ModelSerializer):
    url = IdUrlField("api:photo-detail")
    filename = serializers.CharField(source="original_filename", read_only=True)
    job = JobSerializer(source="current_job", read_only=True, help_text="The photo's newest colorization job.")
    original_url = IdUrlField("api:photo-original")
    result_url = serializers.SerializerMethodField(
        help_text="The newest colorized version (PNG, full resolution); null until there is one."
    )

    class Meta:
        model = Photo
        fields = [
            "id", "url", "filename", "format", "width", "height", "byte_size", "sha256", "created", "job",
            "original_url", "result_url",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_result_url(self, photo):
        if photo.latest_result_job is None:
            return None
        return url_for(self.context, "api:photo-result", photo.id)


class UploadSerializer(serializers.Serializer):
    # Empty files are refused by the upload validation, with the same message as in the UI.
    image = serializers.FileField(allow_empty_file=True, help_text="JPEG, PNG, WebP, TIFF, BMP or GIF.")


class QueryChoiceField(serializers.ChoiceField):
    """A choice in a query string, where an empty value (`?state=`) is refused like any other.

    DRF takes an empty value of an optional field for no value at all: `?state=` would list
    every photo although "" is not one of the choices the schema lists.
    """

    def get_value(self, dictionary):
        return dictionary.get(self.field_name, empty)


class PhotoFilterSerializer(serializers.Serializer):
    state = QueryChoiceField(
        ColorizationJob.State.values, required=False, help_text="Only photos whose newest job is in this state."
    )


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`.")


class ErrorContentSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable and machine-readable, e.g. not_found, not_an_image.")
    message = serializers.CharField(help_text="For people.")
    detail = serializers.JSONField(
        allow_null=True, help_text="Per-field errors of an invalid request; {retry_after} when throttled."
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorContentSerializer()
