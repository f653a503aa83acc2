from django.contrib.auth import views as auth_views
from django.urls import path

from portal import views

app_name = "portal"

urlpatterns = [
    path("entrar/", views.LoginView.as_view(), name="login"),
    path("sair/", auth_views.LogoutView.as_view(), name="logout"),
    path("entrar/link/", views.login_link_request, name="login-link"),
    path("entrar/link/<str:token>/", views.login_link_use, name="login-link-use"),
    path("senha/", views.PasswordResetView.as_view(), name="password-reset"),
    path(
        "senha/enviada/",
        auth_views.PasswordResetDoneView.as_view(
            template_name="registration/password_reset_done.html"
        ),
        name="password-reset-done",
    ),
    path(
        "senha/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password-reset-confirm",
    ),
    path(
        "senha/concluida/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="registration/password_reset_complete.html"
        ),
        name="password-reset-complete",
    ),
    path("idioma/", views.language_set, name="language"),
    path("conta/", views.statement_page, name="statement"),
    path("conta/chamadas.csv", views.calls_csv, name="calls-csv"),
    path("conta/extrato.csv", views.statement_csv, name="statement-csv"),
    path("conta/extrato/imprimir/", views.statement_print, name="statement-print"),
    path("conta/chaves/", views.api_keys_page, name="api-keys"),
    path("conta/chaves/<int:pk>/revogar/", views.api_key_revoke, name="api-key-revoke"),
    path("conta/comprar/", views.purchase_page, name="purchase"),
    path("conta/comprar/<int:package_id>/", views.purchase_confirm, name="purchase-confirm"),
    path("conta/pedidos/<int:purchase_id>/", views.order_page, name="order"),
    path("conta/pedidos/<int:purchase_id>/painel/", views.order_panel, name="order-panel"),
    path("api/v1/me/balance", views.BalanceView.as_view(), name="api-balance"),
    path("api/v1/me/login-link", views.WidgetLoginLinkView.as_view(), name="api-login-link"),
    path("api/v1/me/purchases", views.PurchasesView.as_view(), name="api-purchases"),
    path(
        "api/v1/me/purchases/<int:purchase_id>",
        views.PurchaseDetailView.as_view(),
        name="api-purchase",
    ),
]
