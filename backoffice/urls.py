from django.urls import path

from backoffice import api, api_catalogue, api_history

app_name = "admin-api"
urlpatterns = [
    path("users", api.UserListCreate.as_view(), name="users"),
    path("users/<int:user_id>", api.UserDetail.as_view(), name="user"),
    path("users/<int:user_id>/suspend", api.UserSuspension.as_view(), name="user-suspend"),
    path("users/<int:user_id>/reactivate", api.UserReactivation.as_view(), name="user-reactivate"),
    path("grants", api.GrantCreate.as_view(), name="grants"),
    path("grant-requests", api.GrantRequestList.as_view(), name="grant-requests"),
    path(
        "grant-requests/<int:request_id>/approve",
        api.GrantRequestApprove.as_view(),
        name="grant-request-approve",
    ),
    path(
        "grant-requests/<int:request_id>/reject",
        api.GrantRequestReject.as_view(),
        name="grant-request-reject",
    ),
    path("purchases", api.PurchaseListCreate.as_view(), name="purchases"),
    path(
        "purchases/<int:purchase_id>/confirm",
        api.PurchaseConfirm.as_view(),
        name="purchase-confirm",
    ),
    path(
        "purchases/<int:purchase_id>/cancel", api.PurchaseCancel.as_view(), name="purchase-cancel"
    ),
    path(
        "purchases/<int:purchase_id>/refund", api.PurchaseRefund.as_view(), name="purchase-refund"
    ),
    path("api-keys", api.ApiKeyCreate.as_view(), name="api-keys"),
    path("plans", api_catalogue.PlanListCreate.as_view(), name="plans"),
    path("plans/<slug:slug>", api_catalogue.PlanDetail.as_view(), name="plan"),
    path("model-prices", api_catalogue.ModelPriceListCreate.as_view(), name="model-prices"),
    path("model-prices/<path:model>", api_catalogue.ModelPriceDetail.as_view(), name="model-price"),
    path("ledger", api_history.LedgerList.as_view(), name="ledger"),
    path("ledger.csv", api_history.LedgerCsv.as_view(), name="ledger-csv"),
    path("calls", api_history.CallList.as_view(), name="calls"),
    path("calls.csv", api_history.CallCsv.as_view(), name="calls-csv"),
]
