from django.contrib.auth.decorators import login_not_required
from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import views

app_name = "api"

urlpatterns = [
    path("v1/auth/token/", views.ObtainToken.as_view(), name="token"),
    path("v1/photos/", views.PhotoList.as_view(), name="photo-list"),
    path("v1/photos/<uuid:pk>/", views.PhotoDetail.as_view(), name="photo-detail"),
    path("v1/photos/<uuid:pk>/colorize/", views.PhotoColorize.as_view(), name="photo-colorize"),
    path("v1/photos/<uuid:pk>/palette/", views.PhotoPalette.as_view(), name="photo-palette"),
    path("v1/photos/<uuid:pk>/original", views.PhotoOriginal.as_view(), name="photo-original"),
    path("v1/photos/<uuid:pk>/result", views.PhotoResult.as_view(), name="photo-result"),
    path("v1/jobs/<uuid:pk>/", views.JobDetail.as_view(), name="job-detail"),
    # The schema and its docs are public, like any API's reference.
    path("schema/", login_not_required(SpectacularAPIView.as_view()), name="schema"),
    path("docs/", login_not_required(SpectacularSwaggerView.as_view(url_name="api:schema")), name="docs"),
    re_path(r"", views.NoSuchEndpoint.as_view()),
]
