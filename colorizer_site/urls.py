from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from gallery.views import limit_failed_logins, login_view, signup

urlpatterns = [
    # The admin's own log-in, with the same limits as the site's (before the admin's URLs take it).
    path("admin/login/", limit_failed_logins(admin.site.login)),
    path("admin/", admin.site.urls),
    path("accounts/signup/", signup, name="signup"),
    path("accounts/login/", login_view, name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/", include("gallery.api.urls")),
    path("", include("gallery.urls")),
]

handler500 = "gallery.api.exceptions.server_error"
