from rest_framework.response import Response
from rest_framework.views import APIView


class MeView(APIView):
    """Who the caller is, as Solaris resolved them (handy to check an integration's headers)."""

    def get(self, request):
        user = request.user
        subscription = getattr(user, "subscription", None)
        return Response(
            {
                "id": user.pk,
                "email": user.email,
                "name": user.name,
                "language": user.language,
                "plan": subscription.plan.slug if subscription else None,
            }
        )
