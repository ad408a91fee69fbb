from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.reverse import reverse

from gallery.models import ColorizationJob, Photo


class JobSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:job-detail")
    photo = serializers.UUIDField(source="photo_id", read_only=True)
    photo_url = serializers.HyperlinkedRelatedField(source="photo", view_name="api:photo-detail", read_only=True)
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
        return reverse("api:photo-result", args=[job.photo_id], request=self.context["request"])


class PhotoSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:photo-detail")
    filename = serializers.CharField(source="original_filename", read_only=True)
    job = JobSerializer(source="current_job", read_only=True, help_text="The photo's newest colorization job.")
    original_url = serializers.HyperlinkedIdentityField(view_name="api:photo-original")
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
        return reverse("api:photo-result", args=[photo.id], request=self.context["request"])


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
