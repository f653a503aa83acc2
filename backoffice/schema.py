"""OpenAPI pieces drf-spectacular cannot infer: Solaris's API-key scheme and GET /api/v1/me."""

from typing import cast

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiViewExtension
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "credits.authentication.ApiKeyAuthentication"
    name = "SolarisApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A Solaris API key, `Authorization: Bearer sol-…` "
            "(a staff user's key for /api/v1/admin/).",
        }


class LibreChatTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.LibreChatJWTAuthentication"
    name = "LibreChatToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "LibreChat's own access token (HS256, signed with its JWT_SECRET).",
        }


class MeViewSchema(OpenApiViewExtension):
    """accounts.views.MeView is a plain APIView: describe its answer from here."""

    target_class = "accounts.views.MeView"

    def view_replacement(self):
        me = inline_serializer(
            "Me",
            {
                "id": serializers.IntegerField(),
                "email": serializers.EmailField(),
                "name": serializers.CharField(),
                "language": serializers.CharField(),
                "plan": serializers.CharField(allow_null=True),
            },
        )

        target = cast(type, self.target_class)  # resolved from its dotted path by then

        class Described(target):  # type: ignore[valid-type,misc]
            @extend_schema(summary="Who the caller is", responses={200: me})
            def get(self, request):
                return super().get(request)

        return Described
