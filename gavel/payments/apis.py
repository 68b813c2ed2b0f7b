"""The payments API: one view per operation, each calling one service or selector."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from gavel.common.api import GavelAPIView, request_user
from gavel.common.errors import NotFoundError
from gavel.common.pagination import CursorPagination
from gavel.common.serializers import MinorUnitsField, StrictSerializer
from gavel.payments import selectors
from gavel.payments.models import AuditLogEntry, Dispute, Hold, Order, Refund
from gavel.payments.services import charging, disputes, holds, refunds, transfers
from gavel.payments.services.orders import order_for_sale
from gavel.users.permissions import IsStaff


class OrderLineOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.IntegerField()
    sale_id = serializers.IntegerField(allow_null=True)
    description = serializers.CharField()
    seller_id = serializers.IntegerField()
    hammer_minor = serializers.IntegerField()
    buyers_premium_minor = serializers.IntegerField()
    buyer_fee_minor = serializers.IntegerField()
    total_minor = serializers.IntegerField()


class OrderOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.IntegerField()
    status = serializers.CharField()
    kind = serializers.CharField()
    funds_flow = serializers.CharField()
    currency = serializers.CharField()
    subtotal_minor = serializers.IntegerField()
    buyers_premium_minor = serializers.IntegerField()
    buyer_fees_minor = serializers.IntegerField()
    total_minor = serializers.IntegerField()
    captured_minor = serializers.IntegerField()
    refunded_minor = serializers.IntegerField()
    refundable_minor = serializers.IntegerField()
    lines = OrderLineOutputSerializer(many=True)
    created_at = serializers.DateTimeField()
    captured_at = serializers.DateTimeField(allow_null=True)
    receipt_confirmed_at = serializers.DateTimeField(allow_null=True)


class ReceiptOutputSerializer(OrderOutputSerializer):
    payment_intent_id = serializers.CharField()
    charge_id = serializers.CharField()
    paid_minor = serializers.IntegerField()


def _order_response(order: Order, status_code: int = status.HTTP_200_OK) -> Response:
    return Response(OrderOutputSerializer(selectors.order_summary(order)).data, status=status_code)


class OrderListApi(GavelAPIView):
    @extend_schema(responses={200: OrderOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        paginator = CursorPagination()
        page = paginator.paginate_queryset(
            selectors.orders_for_buyer(user=request_user(request)), request, view=self
        )
        assert page is not None
        return paginator.get_paginated_response(
            OrderOutputSerializer(
                [selectors.order_summary(order) for order in page], many=True
            ).data
        )


class OrderDetailApi(GavelAPIView):
    @extend_schema(responses={200: OrderOutputSerializer})
    def get(self, request: Request, order_id: int) -> Response:
        return _order_response(
            selectors.order_for_viewer(order_id=order_id, user=request_user(request))
        )


class OrderReceiptApi(GavelAPIView):
    @extend_schema(responses={200: ReceiptOutputSerializer})
    def get(self, request: Request, order_id: int) -> Response:
        order = selectors.order_for_viewer(order_id=order_id, user=request_user(request))
        return Response(ReceiptOutputSerializer(selectors.order_receipt(order)).data)


class CheckoutApi(GavelAPIView):
    """Pay for a won (or bought) item now: its checkout holds the buyer's other unpaid
    sales too, and is charged with the saved payment method."""

    class InputSerializer(StrictSerializer):
        sale_id = serializers.IntegerField(min_value=1)

    @extend_schema(request=InputSerializer, responses={200: OrderOutputSerializer})
    def post(self, request: Request) -> Response:
        from gavel.auctions.models import Sale

        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = request_user(request)
        sale_id = serializer.validated_data["sale_id"]
        if not Sale.objects.filter(pk=sale_id, buyer=user).exists():
            raise NotFoundError("No such sale.", code="sale_not_found")
        order = order_for_sale(sale_id=sale_id)
        return _order_response(charging.order_charge(order_id=order.pk))


class OrderRetryApi(GavelAPIView):
    """Pay again after a decline or an abandoned 3-D Secure, optionally with another card."""

    class InputSerializer(StrictSerializer):
        payment_method_id = serializers.CharField(max_length=255, required=False)

    @extend_schema(request=InputSerializer, responses={200: OrderOutputSerializer})
    def post(self, request: Request, order_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        order = charging.order_payment_retry(
            order_id=order_id,
            user=request_user(request),
            payment_method_id=serializer.validated_data.get("payment_method_id"),
        )
        return _order_response(order)


class AuthenticationOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    payment_intent_id = serializers.CharField()
    client_secret = serializers.CharField()
    payment_method_id = serializers.CharField()


class OrderAuthenticationApi(GavelAPIView):
    """The client secret for PaymentSheet / Elements to finish 3-D Secure."""

    @extend_schema(responses={200: AuthenticationOutputSerializer})
    def get(self, request: Request, order_id: int) -> Response:
        intent_id, secret, method = charging.order_authentication_secret(
            order_id=order_id, user=request_user(request)
        )
        return Response(
            AuthenticationOutputSerializer(
                {
                    "payment_intent_id": intent_id,
                    "client_secret": secret,
                    "payment_method_id": method,
                }
            ).data
        )


class OrderAuthenticationCompleteApi(GavelAPIView):
    """The app finished 3-D Secure: Gavel re-reads the payment now."""

    class InputSerializer(StrictSerializer):
        pass

    @extend_schema(request=InputSerializer, responses={200: OrderOutputSerializer})
    def post(self, request: Request, order_id: int) -> Response:
        self.InputSerializer(data=request.data).is_valid(raise_exception=True)
        return _order_response(
            charging.order_payment_refresh(order_id=order_id, user=request_user(request))
        )


class OrderReceiptConfirmApi(GavelAPIView):
    """The buyer received the items: the sellers are paid now."""

    class InputSerializer(StrictSerializer):
        pass

    @extend_schema(request=InputSerializer, responses={200: OrderOutputSerializer})
    def post(self, request: Request, order_id: int) -> Response:
        self.InputSerializer(data=request.data).is_valid(raise_exception=True)
        return _order_response(
            transfers.order_receipt_confirm(order_id=order_id, user=request_user(request))
        )


class RefundOutputSerializer(serializers.ModelSerializer[Refund]):
    class Meta:
        model = Refund
        fields = ("id", "order", "status", "amount_minor", "currency", "reason", "created_at")
        read_only_fields = fields


class RefundRequestApi(GavelAPIView):
    class InputSerializer(StrictSerializer):
        amount_minor = MinorUnitsField(min_value=1)
        reason = serializers.CharField(max_length=500)

    @extend_schema(request=InputSerializer, responses={201: RefundOutputSerializer})
    def post(self, request: Request, order_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        refund = refunds.refund_request(
            order_id=order_id, user=request_user(request), **serializer.validated_data
        )
        return Response(RefundOutputSerializer(refund).data, status=status.HTTP_201_CREATED)


class HoldOutputSerializer(serializers.ModelSerializer[Hold]):
    class Meta:
        model = Hold
        fields = ("id", "auction", "status", "amount_minor", "currency", "expires_at")
        read_only_fields = fields


class HoldPlaceApi(GavelAPIView):
    """Authorize a hold (or deposit) to bid above an auction's hold threshold."""

    class InputSerializer(StrictSerializer):
        auction_id = serializers.IntegerField(min_value=1)
        amount_minor = MinorUnitsField(min_value=1)

    @extend_schema(request=InputSerializer, responses={201: HoldOutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        hold = holds.hold_place(user=request_user(request), **serializer.validated_data)
        return Response(HoldOutputSerializer(hold).data, status=status.HTTP_201_CREATED)


# ----------------------------------------------------------------------------- staff


class StaffRefundIssueApi(GavelAPIView):
    permission_classes = (IsStaff,)

    class InputSerializer(StrictSerializer):
        amount_minor = MinorUnitsField(min_value=1)
        reason = serializers.CharField(max_length=500)

    @extend_schema(request=InputSerializer, responses={201: RefundOutputSerializer})
    def post(self, request: Request, order_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        refund = refunds.refund_issue(
            order_id=order_id, actor=request_user(request), **serializer.validated_data
        )
        return Response(RefundOutputSerializer(refund).data, status=status.HTTP_201_CREATED)


class StaffRefundApproveApi(GavelAPIView):
    permission_classes = (IsStaff,)

    class InputSerializer(StrictSerializer):
        pass

    @extend_schema(request=InputSerializer, responses={200: RefundOutputSerializer})
    def post(self, request: Request, refund_id: int) -> Response:
        self.InputSerializer(data=request.data).is_valid(raise_exception=True)
        refund = refunds.refund_approve(refund_id=refund_id, actor=request_user(request))
        return Response(RefundOutputSerializer(refund).data)


class StaffRefundRejectApi(GavelAPIView):
    permission_classes = (IsStaff,)

    class InputSerializer(StrictSerializer):
        reason = serializers.CharField(max_length=500)

    @extend_schema(request=InputSerializer, responses={200: RefundOutputSerializer})
    def post(self, request: Request, refund_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        refund = refunds.refund_reject(
            refund_id=refund_id,
            actor=request_user(request),
            reason=serializer.validated_data["reason"],
        )
        return Response(RefundOutputSerializer(refund).data)


class DisputeOutputSerializer(serializers.ModelSerializer[Dispute]):
    class Meta:
        model = Dispute
        fields = (
            "id",
            "order",
            "stripe_dispute_id",
            "stripe_status",
            "outcome",
            "amount_minor",
            "currency",
            "reason",
            "evidence_due_at",
            "evidence_submitted_at",
        )
        read_only_fields = fields


class StaffDisputeEvidenceApi(GavelAPIView):
    permission_classes = (IsStaff,)

    class InputSerializer(StrictSerializer):
        evidence = serializers.DictField(
            child=serializers.CharField(max_length=20_000), allow_empty=False
        )
        submit = serializers.BooleanField(default=True)

    @extend_schema(request=InputSerializer, responses={200: DisputeOutputSerializer})
    def post(self, request: Request, dispute_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        dispute = disputes.dispute_evidence_submit(
            dispute_id=dispute_id, actor=request_user(request), **serializer.validated_data
        )
        return Response(DisputeOutputSerializer(dispute).data)


class AuditLogOutputSerializer(serializers.ModelSerializer[AuditLogEntry]):
    actor_email = serializers.EmailField(source="actor.email")

    class Meta:
        model = AuditLogEntry
        fields = (
            "id",
            "actor",
            "actor_email",
            "action",
            "object_type",
            "object_id",
            "data",
            "created_at",
        )
        read_only_fields = fields


class StaffAuditLogApi(GavelAPIView):
    permission_classes = (IsStaff,)

    @extend_schema(responses={200: AuditLogOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        paginator = CursorPagination()
        page = paginator.paginate_queryset(selectors.audit_log(), request, view=self)
        assert page is not None
        return paginator.get_paginated_response(AuditLogOutputSerializer(page, many=True).data)
