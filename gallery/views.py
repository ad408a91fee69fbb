"""Server-rendered pages. Each view checks ownership and hands the work to gallery.services."""

import functools
import json
import math
import uuid
from pathlib import PurePath

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import UserCreationForm
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_POST
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import ValidationError

from . import ratelimits, services
from .api.exceptions import field_messages
from .api.serializers import MAX_HINTS, ColorizeSettingsSerializer, PalettePointSerializer
from .api.throttling import upload_wait
from .models import CONTENT_TYPES, ColorizationJob
from .request_size import accepts_uploads

PHOTOS_PER_PAGE = 24


def limit_failed_logins(login_view):
    """Refuse log-ins (429) from an address or for an account with too many recent failures."""

    @functools.wraps(login_view)
    def limited(request, *args, **kwargs):
        if request.method == "POST":
            wait = ratelimits.login_wait(request, request.POST.get("username", ""))
            if wait:
                return too_many_requests(
                    request, wait, "Too many failed log-ins for this account or from your network."
                )
        return login_view(request, *args, **kwargs)

    return login_not_required(limited)


login_view = limit_failed_logins(auth_views.LoginView.as_view())


def too_many_requests(request, wait, reason):
    response = render(
        request, "gallery/too_many_requests.html", {"reason": reason, "wait": ratelimits.wait_text(wait)}, status=429
    )
    response["Retry-After"] = str(math.ceil(wait))
    return response


@login_not_required
def signup(request):
    if request.method == "POST" and (wait := ratelimits.signup_wait(request)):
        return too_many_requests(request, wait, "Too many sign-ups from your network.")
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        login(request, form.save())
        return redirect("gallery:index")
    return render(request, "registration/signup.html", {"form": form})


def index(request):
    page = Paginator(services.photos_of(request.user), PHOTOS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "gallery/index.html", {"page": page})


@accepts_uploads()
def upload(request):
    if request.method != "POST":
        limits = {
            "max_bytes": settings.COLORIZER_MAX_UPLOAD_BYTES,
            "max_mb": settings.COLORIZER_MAX_UPLOAD_BYTES / 1e6,
            "max_megapixels": settings.COLORIZER_MAX_PIXELS / 1e6,
            "max_files": settings.COLORIZER_MAX_UPLOAD_FILES,
        }
        return render(request, "gallery/upload.html", limits)
    results = []
    for uploaded_file in request.FILES.getlist("files"):
        if wait := upload_wait(request):
            message = (f"{uploaded_file.name} was not uploaded: you have reached your upload limit; "
                       f"try again in {ratelimits.wait_text(wait)}.")
            results.append({"name": uploaded_file.name, "code": "throttled", "message": message})
            continue
        try:
            photo = services.upload_photo(request.user, uploaded_file)
        except services.UploadRejected as refusal:
            results.append({"name": uploaded_file.name, "code": refusal.code, "message": refusal.message})
        else:
            results.append({"name": photo.original_filename, "photo": _status(photo)})
    # The upload page's script sends each file on its own and wants JSON; without script the
    # form posts them all and gets the gallery back with one message per file.
    if request.get_preferred_type(["text/html", "application/json"]) == "application/json":
        return JsonResponse({"results": results})
    for result in results:
        if "photo" in result:
            messages.success(request, f"{result['name']} uploaded; colorizing it now.")
        else:
            messages.error(request, result["message"])
    if not results:
        messages.error(request, "Choose at least one image to upload.")
        return redirect("gallery:upload")
    return redirect("gallery:index")


@require_GET
def status(request):
    """States of the requested photos, for pages that update themselves while jobs run."""
    ids = []
    for value in request.GET.get("ids", "").split(",")[:PHOTOS_PER_PAGE * 2]:
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            continue
    photos = services.photos_of(request.user).filter(id__in=ids)
    return JsonResponse({"photos": {str(photo.id): _status(photo) for photo in photos}})


def photo_detail(request, photo_id):
    # The slider shows display-size copies of both sides (~1 MB for any photo); the buttons
    # download the full resolution.
    photo = _owned_photo(request, photo_id)
    job = photo.current_job
    return render(
        request,
        "gallery/photo.html",
        {
            "photo": photo,
            "job": job,
            "result_job": photo.latest_result_job,
            # The colour controls start from the newest job's settings: its hints come back.
            "hints_json": json.dumps(job.hints),
            "max_hints": MAX_HINTS,
        },
    )


@cache_control(private=True)
def original(request, photo_id):
    photo = _owned_photo(request, photo_id)
    return FileResponse(
        photo.original.open("rb"),
        as_attachment="download" in request.GET,
        filename=photo.original_filename,
        content_type=CONTENT_TYPES[photo.format],
    )


# Derived images never change under their URL (a photo's original never changes; a result's
# URLs carry ?v=<job id>), so browsers may keep them for good. Private: they are someone's photos.
FOREVER = {"private": True, "max_age": 365 * 24 * 3600, "immutable": True}


@cache_control(**FOREVER)
def original_png(request, photo_id):
    photo = _owned_photo(request, photo_id)
    return FileResponse(services.converted_file(photo, photo.original, "PNG"), content_type="image/png")


@cache_control(**FOREVER)
def original_preview(request, photo_id):
    photo = _owned_photo(request, photo_id)
    return FileResponse(services.original_preview(photo), content_type="image/jpeg")


def result_png(request, photo_id):
    photo = _owned_photo(request, photo_id)
    job, versioned = _requested_result(request, photo)
    return _cached(versioned, FileResponse(
        job.result.open("rb"),
        as_attachment="download" in request.GET,
        filename=result_filename(photo, ".png"),
        content_type="image/png",
    ))


def result_jpg(request, photo_id):
    photo = _owned_photo(request, photo_id)
    job, versioned = _requested_result(request, photo)
    return _cached(versioned, FileResponse(
        services.converted_file(job, job.result, "JPEG"),
        as_attachment="download" in request.GET,
        filename=result_filename(photo, ".jpg"),
        content_type="image/jpeg",
    ))


def result_preview(request, photo_id):
    photo = _owned_photo(request, photo_id)
    job, versioned = _requested_result(request, photo)
    return _cached(versioned, FileResponse(services.result_preview(job), content_type="image/jpeg"))


def thumbnail(request, photo_id):
    photo = _owned_photo(request, photo_id)
    job, versioned = _requested_result(request, photo)
    return _cached(versioned, FileResponse(job.thumbnail.open("rb"), content_type="image/jpeg"))


def _requested_result(request, photo):
    """The result job named by ?v= (then the response never changes), else the newest one."""
    version = request.GET.get("v")
    for job in photo.jobs.all():
        if str(job.id) == version and job.state == ColorizationJob.State.SUCCEEDED:
            return job, True
    return _result_job(photo), False


def _cached(versioned, response):
    patch_cache_control(response, **(FOREVER if versioned else {"private": True}))
    return response


@require_POST
def colorize(request, photo_id):
    """Colorize again with the settings of the photo page's form: `vividness`, and `hints` as JSON
    (what the page's script keeps up to date); a field left out takes the model's default."""
    photo = _owned_photo(request, photo_id)
    data = {"vividness": _form_number(request.POST["vividness"])} if "vividness" in request.POST else {}
    try:
        if request.POST.get("hints"):
            data["hints"] = json.loads(request.POST["hints"])
        chosen = ColorizeSettingsSerializer(data=data, context={"photo": photo})
        if not chosen.is_valid():
            raise ValidationError(chosen.errors)
        job = services.colorize_photo(photo, **chosen.validated_data)
    except ValueError:
        messages.error(request, "Not colorized again: the hints are not valid JSON.")
    except ValidationError as invalid:
        messages.error(request, "Not colorized again: " + " ".join(field_messages(invalid.detail)))
    except services.Conflict as refusal:
        messages.error(request, refusal.message)
    else:
        messages.success(request, f"{photo.original_filename} is queued to be colorized again ({job.settings_label}).")
    return redirect("gallery:photo", photo_id=photo.id)


def _form_number(text):
    """A form field's text as the number the settings take; text that is no number stays text, which
    they refuse with their own message."""
    try:
        return float(text)
    except ValueError:
        return text


@require_GET
def palette(request, photo_id):
    """The model's plausible colours at ?x=&y= of the photo, for the photo page's eyedropper."""
    photo = _owned_photo(request, photo_id)
    point = PalettePointSerializer(data=request.GET, context={"photo": photo})
    if not point.is_valid():
        return JsonResponse({"error": " ".join(field_messages(point.errors))}, status=400)
    x, y = point.validated_data["x"], point.validated_data["y"]
    try:
        colors = services.palette_at(photo, x, y)
    except services.Conflict as refusal:
        return JsonResponse({"error": refusal.message}, status=409)
    return JsonResponse({"x": x, "y": y, "colors": colors})


@require_POST
def delete(request, photo_id):
    photo = _owned_photo(request, photo_id)
    services.delete_photo(photo)
    messages.success(request, f"{photo.original_filename} and its colorized versions were deleted.")
    return redirect("gallery:index")


@require_GET
def profile(request):
    """The account's page: the API token (shown in full: the user copies it into their scripts)."""
    token = Token.objects.filter(user=request.user).first()
    context = {
        "token": token,
        "token_expires": token and services.token_expires(token),
        "token_expired": token and services.token_has_expired(token),
        "api_root": request.build_absolute_uri("/api/v1/"),
        "docs_url": reverse("api:docs"),
    }
    return render(request, "gallery/profile.html", context)


@require_POST
def reset_token(request):
    services.reset_api_token(request.user)
    messages.success(request, "You have a new API token; the previous one no longer works.")
    return redirect("gallery:profile")


def _owned_photo(request, photo_id):
    # Someone else's photo is indistinguishable from a missing one.
    return get_object_or_404(services.photos_of(request.user), pk=photo_id)


def _result_job(photo):
    job = photo.latest_result_job
    if job is None:
        raise Http404("This photo has not been colorized yet.")
    return job


def result_filename(photo, suffix):
    """How downloads of the colorized photo are named, here and in the REST API."""
    return f"{PurePath(photo.original_filename).stem}-colorized{suffix}"


def _status(photo):
    job = photo.current_job
    result_job = photo.latest_result_job
    return {
        "id": str(photo.id),
        "url": reverse("gallery:photo", args=[photo.id]),
        "state": job.state,
        "label": job.get_state_display(),
        "error": job.error if job.state == ColorizationJob.State.FAILED else "",
        "thumbnail": reverse("gallery:thumbnail", args=[photo.id]) + f"?v={result_job.id}" if result_job else None,
    }
