from django.urls import path

from . import views

app_name = "gallery"

urlpatterns = [
    path("", views.index, name="index"),
    path("upload/", views.upload, name="upload"),
    path("photos/status.json", views.status, name="status"),
    path("photos/<uuid:photo_id>/", views.photo_detail, name="photo"),
    path("photos/<uuid:photo_id>/original", views.original, name="original"),
    path("photos/<uuid:photo_id>/original.png", views.original_png, name="original_png"),
    path("photos/<uuid:photo_id>/original-preview.jpg", views.original_preview, name="original_preview"),
    path("photos/<uuid:photo_id>/result.png", views.result_png, name="result_png"),
    path("photos/<uuid:photo_id>/result.jpg", views.result_jpg, name="result_jpg"),
    path("photos/<uuid:photo_id>/preview.jpg", views.result_preview, name="result_preview"),
    path("photos/<uuid:photo_id>/thumbnail", views.thumbnail, name="thumbnail"),
    path("photos/<uuid:photo_id>/colorize", views.colorize, name="colorize"),
    path("photos/<uuid:photo_id>/palette.json", views.palette, name="palette"),
    path("photos/<uuid:photo_id>/delete", views.delete, name="delete"),
    path("profile/", views.profile, name="profile"),
    path("profile/token", views.reset_token, name="reset_token"),
]
