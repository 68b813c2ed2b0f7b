from django.contrib import admin

from gavel.payouts.models import Payout, PayoutRun


@admin.register(Payout)
class PayoutAdmin(admin.ModelAdmin[Payout]):
    list_display = ("id", "account_id", "status", "amount_minor", "currency", "created_at")
    list_filter = ("status", "currency")
    search_fields = ("account_id", "stripe_payout_id")
    readonly_fields = [field.name for field in Payout._meta.fields]

    def has_add_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(PayoutRun)
class PayoutRunAdmin(admin.ModelAdmin[PayoutRun]):
    list_display = ("id", "started_at", "finished_at", "accounts_seen", "payouts_created")
    readonly_fields = ("started_at", "finished_at", "accounts_seen", "payouts_created")

    def has_add_permission(self, request: object, obj: object = None) -> bool:
        return False
