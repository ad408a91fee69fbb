from django.contrib import admin
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from . import services
from .models import ApiToken, ColorizationJob, Photo


class ColorizationJobInline(admin.TabularInline):
    model = ColorizationJob
    extra = 0
    can_delete = False
    fields = readonly_fields = [
        "state", "error", "vividness", "hints", "model_version", "queued_at", "started_at", "finished_at", "attempts"
    ]

    def has_add_permission(self, request, obj):
        return False


@admin.register(Photo)
class PhotoAdmin(admin.ModelAdmin):
    list_display = ["original_filename", "owner", "format", "width", "height", "byte_size", "created"]
    list_filter = ["format", "created"]
    search_fields = ["original_filename", "owner__username", "sha256"]
    # Stored files are private: shown by name, never linked (that would bypass the owner check).
    readonly_fields = [
        "id", "owner", "stored_original", "stored_preview", "original_filename", "sha256", "byte_size", "width", "height",
        "format", "created",
    ]
    exclude = ["original", "preview"]
    inlines = [ColorizationJobInline]

    def has_add_permission(self, request):
        return False  # photos come in through upload validation only

    @admin.display(description="stored as")
    def stored_original(self, photo):
        return photo.original.name

    @admin.display(description="preview stored as")
    def stored_preview(self, photo):
        return photo.preview.name

    def get_deleted_objects(self, objs, request):
        # Jobs cannot be deleted on their own, yet they go with their photo.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, perms_needed - {ColorizationJob._meta.verbose_name}, protected

    # Deleting here must remove the stored files too.
    def delete_model(self, request, photo):
        services.delete_photo(photo)

    def delete_queryset(self, request, queryset):
        for photo in queryset:
            services.delete_photo(photo)


@admin.register(ColorizationJob)
class ColorizationJobAdmin(admin.ModelAdmin):
    list_display = ["photo", "state", "attempts", "model_version", "queued_at", "finished_at"]
    list_filter = ["state", "model_version"]
    search_fields = ["photo__original_filename", "photo__owner__username", "error"]
    list_select_related = ["photo"]
    readonly_fields = [
        "id", "photo", "state", "error", "vividness", "hints", "stored_result", "stored_preview", "stored_thumbnail",
        "stored_palette",
        "model_version", "queued_at", "started_at", "finished_at", "attempts", "sent_at", "lease_holder",
        "lease_expires_at",
    ]
    exclude = ["result", "preview", "thumbnail", "palette", "lease_token"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # a photo needs its jobs; they go with it, files and all

    @admin.display(description="result stored as")
    def stored_result(self, job):
        return job.result.name

    @admin.display(description="preview stored as")
    def stored_preview(self, job):
        return job.preview.name

    @admin.display(description="thumbnail stored as")
    def stored_thumbnail(self, job):
        return job.thumbnail.name

    @admin.display(description="colour proposals stored as")
    def stored_palette(self, job):
        return job.palette.name


# DRF's token admin lists every key in full; ours shows a prefix (enough to match a key someone
# reports) and lets staff revoke tokens, never read or set them.
admin.site.unregister(TokenProxy)


@admin.register(ApiToken)
class ApiTokenAdmin(TokenAdmin):
    list_display = ["key_prefix", "user", "created", "expires"]
    fields = readonly_fields = ["key_prefix", "user", "created", "expires"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="key")
    def key_prefix(self, token):
        return f"{token.key[:6]}…"

    @admin.display(description="expires")
    def expires(self, token):
        return services.token_expires(token) or "never"
