from django.conf import settings
from rest_framework.permissions import BasePermission


class StaffUnlessDebug(BasePermission):
    """Open in DEBUG (the embedded default); staff only otherwise (the API schema and its UI)."""

    def has_permission(self, request, view) -> bool:
        return settings.DEBUG or bool(request.user and request.user.is_staff)
