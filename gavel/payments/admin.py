"""Staff tools: orders and their money read-only; refund and dispute actions go through the
services, which write the audit log."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from gavel.common.errors import ServiceError
from gavel.payments.models import (
    AuditLogEntry,
    Dispute,
    FeeSchedule,
    Hold,
    Order,
    OrderLine,
    OrderTransition,
    PaymentEvent,
    Refund,
    SellerBalanceFlag,
)
from gavel.payments.services.disputes import dispute_evidence_submit
from gavel.payments.services.refunds import (
    order_refundable_minor,
    refund_approve,
    refund_issue,
    refund_reject,
)
from gavel.users.models import User


class ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
    extra = 0
    can_delete = False

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        return [field for field in (self.fields or ()) if isinstance(field, str)]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = ("seller_account_id", "hammer_minor", "commission_minor", "buyers_premium_minor",
              "transferred_minor", "reversed_minor")  # fmt: skip


class TransitionInline(ReadOnlyInline):
    model = OrderTransition
    fields = ("from_status", "to_status", "operation", "reason", "occurred_at")


class EventInline(ReadOnlyInline):
    model = PaymentEvent
    fields = ("type", "amount_minor", "stripe_object_id", "applied", "message", "created_at")


def _actor(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin[Order]):
    list_display = ("id", "buyer", "status", "total_minor", "currency", "created_at")
    list_filter = ("status", "funds_flow", "currency")
    search_fields = ("id", "stripe_charge_id", "stripe_payment_intent_id", "buyer__email")
    readonly_fields = [field.name for field in Order._meta.fields]
    inlines = (OrderLineInline, TransitionInline, EventInline)
    actions = ("refund_in_full",)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Refund what is left to refund (audited)")
    def refund_in_full(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        for order in queryset:
            try:
                refund_issue(
                    order_id=order.pk,
                    actor=_actor(request),
                    amount_minor=order_refundable_minor(order),
                    reason="refunded by staff in the admin",
                )
            except ServiceError as error:
                self.message_user(request, f"Order {order.pk}: {error.message}", messages.ERROR)


@admin.register(Refund)
class RefundAdmin(admin.ModelAdmin[Refund]):
    list_display = ("id", "order", "status", "amount_minor", "currency", "requested_by")
    list_filter = ("status",)
    readonly_fields = [field.name for field in Refund._meta.fields]
    actions = ("approve", "reject")

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Approve and refund (audited)")
    def approve(self, request: HttpRequest, queryset: QuerySet[Refund]) -> None:
        for refund in queryset:
            try:
                refund_approve(refund_id=refund.pk, actor=_actor(request))
            except ServiceError as error:
                self.message_user(request, f"Refund {refund.pk}: {error.message}", messages.ERROR)

    @admin.action(description="Reject (audited)")
    def reject(self, request: HttpRequest, queryset: QuerySet[Refund]) -> None:
        for refund in queryset:
            try:
                refund_reject(
                    refund_id=refund.pk, actor=_actor(request), reason="rejected in admin"
                )
            except ServiceError as error:
                self.message_user(request, f"Refund {refund.pk}: {error.message}", messages.ERROR)


@admin.register(Dispute)
class DisputeAdmin(admin.ModelAdmin[Dispute]):
    list_display = (
        "id",
        "order",
        "stripe_dispute_id",
        "outcome",
        "amount_minor",
        "evidence_due_at",
    )
    list_filter = ("outcome",)
    readonly_fields = [field.name for field in Dispute._meta.fields]
    actions = ("submit_order_evidence",)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Submit the order's description and receipt as evidence (audited)")
    def submit_order_evidence(self, request: HttpRequest, queryset: QuerySet[Dispute]) -> None:
        for dispute in queryset:
            order = dispute.order
            lines = "; ".join(line.description for line in order.lines.all())
            evidence = {
                "product_description": lines or f"Order {order.pk}",
                "uncategorized_text": (
                    f"Order {order.pk} paid {order.captured_at:%Y-%m-%d}; receipt confirmed "
                    f"{order.receipt_confirmed_at or 'not yet'}."
                ),
            }
            try:
                dispute_evidence_submit(
                    dispute_id=dispute.pk, actor=_actor(request), evidence=evidence
                )
            except ServiceError as error:
                self.message_user(request, f"Dispute {dispute.pk}: {error.message}", messages.ERROR)


@admin.register(AuditLogEntry)
class AuditLogAdmin(admin.ModelAdmin[AuditLogEntry]):
    list_display = ("created_at", "actor", "action", "object_type", "object_id")
    list_filter = ("action",)
    readonly_fields = [field.name for field in AuditLogEntry._meta.fields]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


admin.site.register(FeeSchedule)
admin.site.register(Hold, readonly_fields=[field.name for field in Hold._meta.fields])
admin.site.register(SellerBalanceFlag)
