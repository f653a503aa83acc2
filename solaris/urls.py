from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.views import MeView
from backoffice.views import dashboard
from kernel.permissions import StaffUnlessDebug
from monitoring import health
from monitoring.views import metrics_view
from portal.views import sign_in_throttled

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/v1/me", MeView.as_view(), name="api-me"),
    path("api/v1/admin/", include("backoffice.urls")),
    path("api/v1/payments/", include("payments.urls")),
    path(
        "api/schema/",
        SpectacularAPIView.as_view(permission_classes=[StaffUnlessDebug]),
        name="schema",
    ),
    path(
        "api/schema/docs/",
        SpectacularSwaggerView.as_view(url_name="schema", permission_classes=[StaffUnlessDebug]),
        name="schema-docs",
    ),
    path("admin/dashboard/", admin.site.admin_view(dashboard), name="admin-dashboard"),
    # The admin's sign-in form, throttled as /entrar/ is (docs/security.md).
    path("admin/login/", sign_in_throttled(admin.site.login)),
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    path("", include("portal.urls")),
]
