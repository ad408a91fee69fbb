import math
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


# As mlcore.hints.MAX_HINTS and mlcore.inference.MAX_VIVIDNESS (tests/api/test_colour_settings.py
# checks): importing them would load torch into the web process.
MAX_HINTS = 64
MAX_VIVIDNESS = 2.0


class JsonTyped:
    """A number field that takes JSON numbers only, as the schema says: DRF's number fields also
    take strings ("1.3"), and its FloatField true and false."""

    def to_internal_value(self, data):
        if isinstance(data, (bool, str)):
            self.fail("invalid")
        return super().to_internal_value(data)


class JsonIntegerField(JsonTyped, serializers.IntegerField):
    pass


class JsonFloatField(JsonTyped, serializers.FloatField):
    pass


class HintSerializer(serializers.Serializer):
    """A colour the person knows for one point of the photo."""

    x = JsonIntegerField(min_value=0, help_text="Pixels from the left edge of the upright photo "
                         "(after EXIF rotation, as `width` counts them).")
    y = JsonIntegerField(min_value=0, help_text="Pixels from the top edge of the upright photo.")
    color = serializers.RegexField(
        r"^#[0-9a-fA-F]{6}$", help_text="The colour as `#rrggbb`; its hue and saturation are used, the photo "
        "keeps its own lightness.", error_messages={"invalid": "Enter a colour as #rrggbb."},
    )

    def validate(self, attrs):
        attrs["color"] = attrs["color"].lower()
        photo = self.context.get("photo")
        if photo is not None:
            _check_point(photo, attrs)
        return attrs


def _check_point(photo, point):
    """A ValidationError naming x or y when the point lies outside the photo."""
    errors = {}
    for name, size, side in (("x", photo.width, "wide"), ("y", photo.height, "high")):
        if point[name] >= size:
            errors[name] = [f"{point[name]} is outside the photo, which is {size} px {side} ({name} from 0 to {size - 1})."]
    if errors:
        raise serializers.ValidationError(errors)


class ColorizeSettingsSerializer(serializers.Serializer):
    """How to colorize: all optional; nothing given is the model's own colours."""

    vividness = JsonFloatField(
        min_value=0.0, max_value=MAX_VIVIDNESS, default=1.0,
        help_text="Colour strength: multiplies the model's tuned chroma gain. 0 is grey, 1 the model's "
        f"own colours, {MAX_VIVIDNESS:g} twice as strong.",
    )
    hints = serializers.ListField(
        child=HintSerializer(), default=list, max_length=MAX_HINTS,
        help_text=f"Up to {MAX_HINTS} colours you know, each at a point of the photo; the model spreads "
        "each over the object it lies on.",
    )

    def validate_vividness(self, value):
        if not math.isfinite(value):
            raise serializers.ValidationError("A valid number is required.")
        return value


class PalettePointSerializer(serializers.Serializer):
    x = serializers.IntegerField(min_value=0, help_text="Pixels from the left edge of the upright photo.")
    y = serializers.IntegerField(min_value=0, help_text="Pixels from the top edge of the upright photo.")

    def validate(self, attrs):
        _check_point(self.context["photo"], attrs)
        return attrs


class ProposalSerializer(serializers.Serializer):
    color = serializers.CharField(help_text="`#rrggbb`, drawn at the photo's lightness at that point.")
    probability = serializers.FloatField(help_text="How likely the model finds this colour there (0 to 1).")


class PaletteSerializer(serializers.Serializer):
    x = serializers.IntegerField()
    y = serializers.IntegerField()
    colors = ProposalSerializer(many=True, help_text="The model's plausible colours there, most likely first.")


class JobSerializer(serializers.ModelSerializer):
    url = IdUrlField("api:job-detail")
    photo = serializers.UUIDField(source="photo_id", read_only=True)
    photo_url = IdUrlField("api:photo-detail", attribute="photo_id")
    error = serializers.SerializerMethodField(help_text="Why the job failed; null unless it failed.")
    result_url = serializers.SerializerMethodField(help_text="The colorized photo (PNG); null until the job succeeded.")
    vividness = serializers.FloatField(read_only=True, help_text="The colour strength asked for (1 = the model's own).")
    hints = HintSerializer(many=True, read_only=True, help_text="The colour hints asked for.")

    class Meta:
        model = ColorizationJob
        fields = [
            "id", "url", "photo", "photo_url", "state", "error", "result_url", "vividness", "hints", "model_version",
            "attempts", "queued_at", "started_at", "finished_at",
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
