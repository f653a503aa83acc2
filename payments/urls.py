from django.urls import path

from payments import views

app_name = "payments"

urlpatterns = [
    path("mercadopago/webhook", views.mercadopago_webhook, name="mercadopago-webhook"),
]
