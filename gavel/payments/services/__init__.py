"""Services of the payments app (writes). Entry points for other apps, tasks and the API:

* orders: ``order_create`` (legacy imports too), ``orders_import`` (bulk, legacy import),
  ``orders_import_apply`` (the legacy import's SQL path: creates orders from the import
  tables, moves imported ones on), ``order_for_sale`` (the auctions handoff)
* charging: ``order_charge``, ``order_payment_retry``, ``order_payment_refresh``,
  ``order_capture`` (an authorized order, legacy in-flight charges included),
  ``order_payment_attach`` (adopt an existing PaymentIntent: legacy import),
  ``attempt_intent_apply`` (webhooks, janitor), ``orders_unpaid_cancel``
* transfers: ``order_transfers_release``, ``orders_release_due``, ``order_receipt_confirm``,
  ``transfer_execute``, ``reversal_execute``
* refunds: ``refund_request``, ``refund_approve``, ``refund_reject``, ``refund_issue``,
  ``refund_execute``
* disputes: ``dispute_opened_apply``, ``dispute_closed_apply``, ``dispute_evidence_submit``,
  ``order_disputes_sync``, ``disputes_open_refresh``
* holds: ``hold_place``, ``holds_release_for_auction``, ``holds_maintain``
* janitor: ``janitor_run``
"""
