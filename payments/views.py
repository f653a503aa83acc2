"""Mercado Pago → Solaris: the signed webhook. It answers at once; the payment is read back from
Mercado Pago by a Celery task before anything is granted (payments/services.py)."""

from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from kernel.errors import error_body
from payments import services


@csrf_exempt
@require_POST
def mercadopago_webhook(request):
    try:
        services.webhook_receive(query=request.GET, headers=request.headers, body=request.body)
    except services.SignatureInvalid:
        body = error_body(
            _("Invalid or expired signature."),
            code="invalid_signature",
            type="authentication_error",
        )
        return JsonResponse(body, status=401)
    return JsonResponse({"received": True})
