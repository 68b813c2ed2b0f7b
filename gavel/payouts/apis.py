"""The seller's earnings and payouts."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from gavel.common.api import GavelAPIView, request_user
from gavel.common.pagination import CursorPagination
from gavel.payments.selectors import seller_earnings
from gavel.payments.sellers import seller_account_id
from gavel.payouts.models import Payout
from gavel.payouts.selectors import payouts_for_account
from gavel.users.permissions import IsSeller


class EarningsOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    currency = serializers.CharField()
    owed_minor = serializers.IntegerField()
    in_stripe_balance_minor = serializers.IntegerField()
    transferred_minor = serializers.IntegerField()
    commission_minor = serializers.IntegerField()


class EarningsApi(GavelAPIView):
    permission_classes = (IsSeller,)

    @extend_schema(responses={200: EarningsOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        user = request_user(request)
        earnings = seller_earnings(account_id=seller_account_id(user=user))
        return Response(EarningsOutputSerializer(earnings, many=True).data)


class PayoutOutputSerializer(serializers.ModelSerializer[Payout]):
    action_needed = serializers.SerializerMethodField()

    class Meta:
        model = Payout
        fields = (
            "id",
            "status",
            "amount_minor",
            "currency",
            "failure_code",
            "failure_message",
            "action_needed",
            "created_at",
        )
        read_only_fields = fields

    def get_action_needed(self, payout: Payout) -> str:
        if payout.blocks_until_bank_changes:
            return "Update your bank details: payouts resume with the next payout run."
        return ""


class PayoutListApi(GavelAPIView):
    permission_classes = (IsSeller,)

    @extend_schema(responses={200: PayoutOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        user = request_user(request)
        paginator = CursorPagination()
        page = paginator.paginate_queryset(
            payouts_for_account(account_id=seller_account_id(user=user)), request, view=self
        )
        assert page is not None
        return paginator.get_paginated_response(PayoutOutputSerializer(page, many=True).data)
