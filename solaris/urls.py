from django.contrib import admin
from django.urls import include, path

from accounts.views import MeView
from proxy.metrics import metrics_view
from solaris import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/v1/me", MeView.as_view(), name="api-me"),
    path("admin/", admin.site.urls),
    path("v1/", include("proxy.urls")),
    path("metrics", metrics_view, name="metrics"),
]
