from django.urls import path

from gavel.payouts import apis

urlpatterns = [
    path("payouts/earnings/", apis.EarningsApi.as_view(), name="payouts-earnings"),
    path("payouts/", apis.PayoutListApi.as_view(), name="payouts-list"),
]
