"""Request bodies are refused from their declared size (413), before any of them is read.

Django would read (and spool to disk) a whole multipart body before the upload's own size check
could refuse it. Each view accepts the small form a page posts (DATA_UPLOAD_MAX_MEMORY_SIZE) and,
when marked with @accepts_uploads, that many files of up to COLORIZER_MAX_UPLOAD_BYTES each.
A body without a Content-Length (chunked) is not read by Django at all.
"""

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render

BATCH = "batch"
# Multipart boundaries and each part's headers.
PART_OVERHEAD = 16 * 1024


def accepts_uploads(files=BATCH):
    """Mark a view whose requests carry up to `files` files (default: a batch, COLORIZER_MAX_UPLOAD_FILES)."""

    def mark(view):
        view.upload_files = files
        return view

    return mark


def max_request_bytes(view):
    files = getattr(view, "upload_files", 0)
    if files == BATCH:
        files = settings.COLORIZER_MAX_UPLOAD_FILES
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE + files * (settings.COLORIZER_MAX_UPLOAD_BYTES + PART_OVERHEAD)


class RequestSizeLimitMiddleware:
    """Must come before anything that reads request.POST (CsrfViewMiddleware does, in process_view)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view, view_args, view_kwargs):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None  # Django reads no body then
        limit = max_request_bytes(view)
        if length <= limit:
            return None
        files = getattr(view, "upload_files", 0)
        message = f"This request is {length / 1e6:.1f} MB; at most {limit / 1e6:.1f} MB is accepted here"
        if files == BATCH:
            message += (f": up to {settings.COLORIZER_MAX_UPLOAD_FILES} files at a time,"
                        f" of up to {settings.COLORIZER_MAX_UPLOAD_BYTES / 1e6:g} MB each")
        elif files:
            message += f": a file of up to {settings.COLORIZER_MAX_UPLOAD_BYTES / 1e6:g} MB"
        message += "."
        # The REST API and the upload page's script read the API's error shape; people get a page.
        wants_json = request.path.startswith("/api/") or request.get_preferred_type(
            ["text/html", "application/json"]) == "application/json"
        if wants_json:
            error = {"code": "too_large", "message": message, "detail": {"max_bytes": limit}}
            return JsonResponse({"error": error}, status=413)
        return render(request, "gallery/request_too_large.html", {"message": message}, status=413)
