from django.urls import path

from backoffice import api

app_name = "admin-api"
urlpatterns = [
    path("users", api.UserListCreate.as_view(), name="users"),
    path("users/<int:user_id>", api.UserDetail.as_view(), name="user"),
    path("grants", api.GrantCreate.as_view(), name="grants"),
    path("purchases", api.PurchaseCreate.as_view(), name="purchases"),
    path(
        "purchases/<int:purchase_id>/confirm",
        api.PurchaseConfirm.as_view(),
        name="purchase-confirm",
    ),
    path("api-keys", api.ApiKeyCreate.as_view(), name="api-keys"),
]
