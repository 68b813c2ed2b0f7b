from django.urls import path

from gavel.payments import apis

urlpatterns = [
    path("payments/orders/", apis.OrderListApi.as_view(), name="payments-order-list"),
    path("payments/checkout/", apis.CheckoutApi.as_view(), name="payments-checkout"),
    path("payments/holds/", apis.HoldPlaceApi.as_view(), name="payments-hold-place"),
    path(
        "payments/orders/<int:order_id>/",
        apis.OrderDetailApi.as_view(),
        name="payments-order-detail",
    ),
    path(
        "payments/orders/<int:order_id>/receipt/",
        apis.OrderReceiptApi.as_view(),
        name="payments-order-receipt",
    ),
    path(
        "payments/orders/<int:order_id>/retry/",
        apis.OrderRetryApi.as_view(),
        name="payments-order-retry",
    ),
    path(
        "payments/orders/<int:order_id>/authentication/",
        apis.OrderAuthenticationApi.as_view(),
        name="payments-order-authentication",
    ),
    path(
        "payments/orders/<int:order_id>/authentication/complete/",
        apis.OrderAuthenticationCompleteApi.as_view(),
        name="payments-order-authentication-complete",
    ),
    path(
        "payments/orders/<int:order_id>/confirm-receipt/",
        apis.OrderReceiptConfirmApi.as_view(),
        name="payments-order-confirm-receipt",
    ),
    path(
        "payments/orders/<int:order_id>/refund-requests/",
        apis.RefundRequestApi.as_view(),
        name="payments-refund-request",
    ),
    path(
        "payments/staff/orders/<int:order_id>/refunds/",
        apis.StaffRefundIssueApi.as_view(),
        name="payments-staff-refund-issue",
    ),
    path(
        "payments/staff/refunds/<int:refund_id>/approve/",
        apis.StaffRefundApproveApi.as_view(),
        name="payments-staff-refund-approve",
    ),
    path(
        "payments/staff/refunds/<int:refund_id>/reject/",
        apis.StaffRefundRejectApi.as_view(),
        name="payments-staff-refund-reject",
    ),
    path(
        "payments/staff/disputes/<int:dispute_id>/evidence/",
        apis.StaffDisputeEvidenceApi.as_view(),
        name="payments-staff-dispute-evidence",
    ),
    path("payments/staff/audit-log/", apis.StaffAuditLogApi.as_view(), name="payments-audit-log"),
]
