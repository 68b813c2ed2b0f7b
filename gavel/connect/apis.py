"""Seller onboarding API for the React Native and Next.js apps, and the staff views.

A seller only ever addresses their own account (``/connect/account/...``, no id in the URL);
staff address any account by Gavel's id (``/connect/accounts/<id>/...``).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from gavel.common.api import GavelAPIView, request_user
from gavel.common.errors import NotFoundError
from gavel.common.pagination import CursorPagination
from gavel.common.serializers import StrictSerializer
from gavel.connect.models import ConnectedAccount, ConnectedAccountChange
from gavel.connect.requirements import disabled_reason_sentence, requirements_explain
from gavel.connect.selectors import (
    account_selling_status,
    connected_account_for_user,
    connected_account_history,
    connected_account_list,
    stripe_dashboard_url,
)
from gavel.connect.services import (
    IssuedLink,
    account_session_create,
    connected_account_refresh,
    dashboard_login_link_create,
    onboarding_link_create,
    seller_onboarding_start,
)
from gavel.connect.states import AccountStatus
from gavel.users.permissions import IsStaff


class SellingStatusSerializer(serializers.Serializer[Any]):
    can_list = serializers.BooleanField()
    payouts_allowed = serializers.BooleanField()
    transfers_allowed = serializers.BooleanField()
    code = serializers.CharField()
    message = serializers.CharField()
    due_by = serializers.DateTimeField(allow_null=True)


class RequirementItemSerializer(serializers.Serializer[Any]):
    message = serializers.CharField()
    keys = serializers.ListField(child=serializers.CharField())


class RequirementsSerializer(serializers.Serializer[Any]):
    due_by = serializers.DateTimeField(allow_null=True)
    disabled_reason = serializers.CharField()
    disabled_reason_message = serializers.CharField()
    currently_due = RequirementItemSerializer(many=True)
    past_due = RequirementItemSerializer(many=True)
    eventually_due = RequirementItemSerializer(many=True)
    pending_verification = RequirementItemSerializer(many=True)
    rejected_by_stripe = serializers.ListField(child=serializers.CharField())


class BankSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    last4 = serializers.CharField()


class AccountOutputSerializer(serializers.ModelSerializer[ConnectedAccount]):
    """What the seller's status screen shows: Stripe's state and what is still missing."""

    selling = serializers.SerializerMethodField()
    requirements = serializers.SerializerMethodField()
    bank = serializers.SerializerMethodField()

    class Meta:
        model = ConnectedAccount
        fields: tuple[str, ...] = (
            "id",
            "stripe_account_id",
            "stripe_api",
            "preset",
            "status",
            "livemode",
            "charges_enabled",
            "payouts_enabled",
            "details_submitted",
            "capabilities",
            "selling",
            "requirements",
            "bank",
            "synced_at",
        )
        read_only_fields: tuple[str, ...] = fields

    @extend_schema(responses=SellingStatusSerializer)
    def get_selling(self, account: ConnectedAccount) -> dict[str, Any]:
        return dict(SellingStatusSerializer(account_selling_status(account=account)).data)

    @extend_schema(responses=RequirementsSerializer)
    def get_requirements(self, account: ConnectedAccount) -> dict[str, Any]:
        value = {
            "due_by": account.requirements_deadline,
            "disabled_reason": account.disabled_reason,
            "disabled_reason_message": disabled_reason_sentence(account.disabled_reason),
            "currently_due": requirements_explain(account.requirements_currently_due),
            "past_due": requirements_explain(account.requirements_past_due),
            "eventually_due": requirements_explain(account.requirements_eventually_due),
            "pending_verification": requirements_explain(account.requirements_pending_verification),
            "rejected_by_stripe": account.requirements_errors,
        }
        return dict(RequirementsSerializer(value).data)

    @extend_schema(responses=BankSerializer(allow_null=True))
    def get_bank(self, account: ConnectedAccount) -> dict[str, str] | None:
        if not account.bank_last4:
            return None
        return {"name": account.bank_name, "last4": account.bank_last4}


class LinkOutputSerializer(serializers.Serializer[IssuedLink]):
    url = serializers.URLField()
    link_type = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)


class SessionOutputSerializer(serializers.Serializer[Any]):
    account_id = serializers.CharField()
    client_secret = serializers.CharField()
    expires_at = serializers.DateTimeField()


class RedirectUrlsInputSerializer(StrictSerializer):
    """Optional redirect targets (must start with an allowed app prefix)."""

    return_url = serializers.CharField(max_length=2000, required=False, default="")
    refresh_url = serializers.CharField(max_length=2000, required=False, default="")


class OnboardingStartApi(GavelAPIView):
    """ "Become a seller": creates the Stripe account once (a double tap finds the same one)
    and answers with the account and, while Stripe still needs something, an onboarding link."""

    class InputSerializer(RedirectUrlsInputSerializer):
        pass

    class OutputSerializer(serializers.Serializer[Any]):
        account = AccountOutputSerializer()
        onboarding_link = LinkOutputSerializer(allow_null=True)

    @extend_schema(
        request=InputSerializer, responses={201: OutputSerializer, 200: OutputSerializer}
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = request_user(request)
        account, created = seller_onboarding_start(user=user)
        link = None
        if account.status != AccountStatus.ENABLED or account.requirements_currently_due:
            link = onboarding_link_create(user=user, **serializer.validated_data)
        body = self.OutputSerializer({"account": account, "onboarding_link": link}).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class AccountDetailApi(GavelAPIView):
    """The seller's own account status: what Stripe still needs, by when, in plain words."""

    @extend_schema(responses={200: AccountOutputSerializer})
    def get(self, request: Request) -> Response:
        account = connected_account_for_user(user=request_user(request))
        if account is None:
            raise NotFoundError("You have no seller account yet.", code="no_connected_account")
        return Response(AccountOutputSerializer(account).data)


class AccountRefreshApi(GavelAPIView):
    """Re-read the seller's own account from Stripe now (after returning from onboarding)."""

    class InputSerializer(StrictSerializer):
        pass

    @extend_schema(request=InputSerializer, responses={200: AccountOutputSerializer})
    def post(self, request: Request) -> Response:
        self.InputSerializer(data=request.data).is_valid(raise_exception=True)
        account = connected_account_for_user(user=request_user(request))
        if account is None:
            raise NotFoundError("You have no seller account yet.", code="no_connected_account")
        account = connected_account_refresh(account_pk=account.pk)
        return Response(AccountOutputSerializer(account).data)


class OnboardingLinkCreateApi(GavelAPIView):
    """A new account link: call it first and again whenever Stripe sends the seller to the
    refresh URL (links expire within minutes and work once)."""

    class InputSerializer(RedirectUrlsInputSerializer):
        pass

    @extend_schema(request=InputSerializer, responses={201: LinkOutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        link = onboarding_link_create(user=request_user(request), **serializer.validated_data)
        return Response(LinkOutputSerializer(link).data, status=status.HTTP_201_CREATED)


class AccountSessionCreateApi(GavelAPIView):
    """The client secret for Stripe's embedded Connect components (Connect.js, React Native)."""

    class InputSerializer(StrictSerializer):
        pass

    @extend_schema(request=InputSerializer, responses={201: SessionOutputSerializer})
    def post(self, request: Request) -> Response:
        self.InputSerializer(data=request.data).is_valid(raise_exception=True)
        session = account_session_create(user=request_user(request))
        return Response(SessionOutputSerializer(session).data, status=status.HTTP_201_CREATED)


class DashboardLinkCreateApi(GavelAPIView):
    """A one-time link into the seller's Express Dashboard."""

    class InputSerializer(StrictSerializer):
        pass

    @extend_schema(request=InputSerializer, responses={201: LinkOutputSerializer})
    def post(self, request: Request) -> Response:
        self.InputSerializer(data=request.data).is_valid(raise_exception=True)
        link = dashboard_login_link_create(user=request_user(request))
        return Response(LinkOutputSerializer(link).data, status=status.HTTP_201_CREATED)


# ---------------------------------------------------------------- staff
class ChangeOutputSerializer(serializers.ModelSerializer[ConnectedAccountChange]):
    class Meta:
        model = ConnectedAccountChange
        fields = (
            "id",
            "source",
            "stripe_event_id",
            "stripe_event_type",
            "status_before",
            "status_after",
            "changed_fields",
            "created_at",
        )
        read_only_fields = fields


class StaffAccountOutputSerializer(AccountOutputSerializer):
    user_id = serializers.IntegerField(read_only=True)
    user_email = serializers.EmailField(source="user.email", read_only=True)
    dashboard_url = serializers.SerializerMethodField()

    class Meta(AccountOutputSerializer.Meta):
        fields = (*AccountOutputSerializer.Meta.fields, "user_id", "user_email", "dashboard_url")
        read_only_fields = fields

    def get_dashboard_url(self, account: ConnectedAccount) -> str:
        return stripe_dashboard_url(account=account)


def _staff_account(account_id: int) -> ConnectedAccount:
    account = connected_account_list().filter(pk=account_id).first()
    if account is None:
        raise NotFoundError("No such connected account.", code="no_connected_account")
    return account


class StaffAccountListApi(GavelAPIView):
    permission_classes = (IsStaff,)

    @extend_schema(responses={200: StaffAccountOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        paginator = CursorPagination()
        page = paginator.paginate_queryset(connected_account_list(), request, view=self)
        assert page is not None
        return paginator.get_paginated_response(StaffAccountOutputSerializer(page, many=True).data)


class StaffAccountDetailApi(GavelAPIView):
    permission_classes = (IsStaff,)

    class OutputSerializer(StaffAccountOutputSerializer):
        history = serializers.SerializerMethodField()

        class Meta(StaffAccountOutputSerializer.Meta):
            fields = (*StaffAccountOutputSerializer.Meta.fields, "history")
            read_only_fields = fields

        @extend_schema(responses=ChangeOutputSerializer(many=True))
        def get_history(self, account: ConnectedAccount) -> list[dict[str, Any]]:
            changes = connected_account_history(account=account)[:100]
            return [dict(item) for item in ChangeOutputSerializer(changes, many=True).data]

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request: Request, account_id: int) -> Response:
        return Response(self.OutputSerializer(_staff_account(account_id)).data)


class StaffAccountRefreshApi(GavelAPIView):
    permission_classes = (IsStaff,)

    class InputSerializer(StrictSerializer):
        pass

    @extend_schema(request=InputSerializer, responses={200: StaffAccountOutputSerializer})
    def post(self, request: Request, account_id: int) -> Response:
        self.InputSerializer(data=request.data).is_valid(raise_exception=True)
        account = connected_account_refresh(account_pk=_staff_account(account_id).pk)
        return Response(StaffAccountOutputSerializer(account).data)
