"""Connect services: become a seller, mirror Stripe's account state, issue onboarding links.

Every write to a ``ConnectedAccount`` happens under its row lock (``lock_objects``) through
``_mirror_apply``, which moves the status only along ``states.TRANSITIONS`` and appends a
``ConnectedAccountChange`` for each change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from gavel.common.bulk import rows_insert
from gavel.common.errors import ConflictError, NotFoundError, ServiceError
from gavel.common.outbox import outbox_enqueue
from gavel.common.pairs import pairs_split
from gavel.connect import metrics
from gavel.connect.lock_objects import connected_account_lock
from gavel.connect.models import ConnectedAccount, ConnectedAccountChange, StripeLinkRequest
from gavel.connect.selectors import account_selling_status
from gavel.connect.states import TERMINAL, AccountStatus, status_derive, status_move_allowed
from gavel.gateway import accounts as gateway
from gavel.gateway.account_types import StripeAccount
from gavel.gateway.client import livemode_expected
from gavel.gateway.errors import GatewayError, GatewayRetryableError
from gavel.users.models import User
from gavel.webhooks.registry import IncomingEvent

logger = logging.getLogger(__name__)

Source = ConnectedAccountChange.Source


class IllegalStatusMove(Exception):
    pass


def _gateway_refusal(error: GatewayError) -> ServiceError:
    if isinstance(error, GatewayRetryableError):
        return ServiceError(
            "Stripe did not answer in time; try again.",
            code="stripe_unavailable",
            status_code=503,
        )
    return ServiceError(
        f"Stripe refused the request: {error.message}", code="stripe_refused", status_code=502
    )


def _epoch(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if value is not None else None


def _mirror_values(snapshot: StripeAccount) -> dict[str, Any]:
    requirements = snapshot.requirements
    bank = snapshot.bank_accounts[0] if snapshot.bank_accounts else None
    return {
        "charges_enabled": snapshot.charges_enabled,
        "payouts_enabled": snapshot.payouts_enabled,
        "details_submitted": snapshot.details_submitted,
        "capabilities": dict(sorted(snapshot.capabilities.items())),
        "requirements_currently_due": list(requirements.currently_due),
        "requirements_eventually_due": list(requirements.eventually_due),
        "requirements_past_due": list(requirements.past_due),
        "requirements_pending_verification": list(requirements.pending_verification),
        "requirements_errors": list(requirements.errors),
        "requirements_deadline": _epoch(requirements.current_deadline),
        "disabled_reason": requirements.disabled_reason or "",
        "dashboard_type": snapshot.dashboard_type,
        "requirement_collection": snapshot.requirement_collection,
        "country": snapshot.country,
        "default_currency": snapshot.default_currency,
        "bank_name": bank.bank_name[:100] if bank else "",
        "bank_last4": bank.last4[:4] if bank else "",
    }


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _payouts_resumed(account: ConnectedAccount) -> None:
    task_name: str = settings.CONNECT_PAYOUTS_RESUMED_TASK
    if task_name:
        outbox_enqueue(
            task_name=task_name,
            kwargs={"connected_account_id": account.pk, "user_id": account.user_id},
            queue="payments",
        )


def _status_move(
    account: ConnectedAccount,
    *,
    target: AccountStatus,
    values: dict[str, Any],
    source: ConnectedAccountChange.Source,
    event: IncomingEvent | None = None,
) -> bool:
    """The one function that changes a mirror: refuses illegal moves, writes the history row.
    Returns whether anything changed. The caller holds the row lock."""
    if not status_move_allowed(current=account.status, target=target):
        raise IllegalStatusMove(f"{account.status} -> {target}")
    changed = {
        name: [_jsonable(getattr(account, name)), _jsonable(value)]
        for name, value in values.items()
        if getattr(account, name) != value
    }
    status_before = account.status
    payouts_before = account_selling_status(account=account).payouts_allowed
    for name, value in values.items():
        setattr(account, name, value)
    account.status = target
    account.synced_at = timezone.now()
    if event is not None:
        created_at = datetime.fromtimestamp(event.created, tz=UTC)
        if account.stripe_event_created_at is None or created_at > account.stripe_event_created_at:
            account.stripe_event_created_at = created_at
    account.save()
    if not changed and status_before == target:
        return False
    ConnectedAccountChange.objects.create(
        account=account,
        source=source,
        stripe_event_id=event.id if event else "",
        stripe_event_type=event.type if event else "",
        status_before=status_before,
        status_after=target,
        changed_fields=changed,
    )
    if status_before != target:
        metrics.STATUS_CHANGES.labels(status_before, target).inc()
    if not payouts_before and account_selling_status(account=account).payouts_allowed:
        _payouts_resumed(account)
    return True


def _mirror_apply(
    account: ConnectedAccount,
    snapshot: StripeAccount,
    *,
    source: ConnectedAccountChange.Source,
    event: IncomingEvent | None = None,
) -> bool:
    values = _mirror_values(snapshot)
    if account.stripe_account_id is None:
        values["stripe_account_id"] = snapshot.id
    target = status_derive(
        details_submitted=snapshot.details_submitted,
        charges_enabled=snapshot.charges_enabled,
        capabilities=snapshot.capabilities,
        required_capabilities=settings.CONNECT_REQUIRED_CAPABILITIES,
        disabled_reason=values["disabled_reason"],
    )
    return _status_move(account, target=target, values=values, source=source, event=event)


# ---------------------------------------------------------------- become a seller
def _preset_configured() -> str:
    preset: str = settings.CONNECT_ACCOUNT_PRESET
    if preset not in gateway.CONTROLLER_PRESETS:
        raise ServiceError(
            f"CONNECT_ACCOUNT_PRESET={preset!r} is not one of "
            f"{', '.join(sorted(gateway.CONTROLLER_PRESETS))}.",
            code="connect_misconfigured",
            status_code=500,
        )
    return preset


# Stripe forgets an idempotency key after 24 hours; past that a replay would create a second
# account, so an older unsettled row is left to support (logged as an error), by the janitor
# and by "become a seller" alike.
IDEMPOTENCY_WINDOW = timedelta(hours=23)


def _stripe_account_ensure(*, account_pk: int) -> ConnectedAccount:
    """Create the Stripe account of a stored row, once. Under the row lock, so a concurrent
    second request waits and then finds the id; the idempotency key comes from the row, so a
    replay after a lost answer returns the account Stripe made the first time. A row older
    than ``IDEMPOTENCY_WINDOW`` is not replayed (409): support settles it."""
    with transaction.atomic():
        account = connected_account_lock(account_pk=account_pk)
        if account.stripe_account_id is not None:
            return account
        if account.created_at < timezone.now() - IDEMPOTENCY_WINDOW:
            logger.error(
                "connected account create unsettled past the idempotency window",
                extra={"connected_account_id": account.pk},
            )
            raise ConflictError(
                "Creating your Stripe account was not confirmed in time; contact support.",
                code="account_create_unsettled",
            )
        # Every parameter comes from the row, so a replay sends the same request (Stripe
        # refuses a reused key with different parameters). Stripe's onboarding asks the email.
        try:
            snapshot = gateway.account_create(
                operation_id=account.pk,
                preset=account.preset,
                country=account.country,
                capabilities=list(settings.CONNECT_REQUIRED_CAPABILITIES),
                metadata={
                    "gavel_user_id": str(account.user_id),
                    "gavel_connected_account_id": str(account.pk),
                },
            )
        except GatewayError as error:
            raise _gateway_refusal(error) from error
        _mirror_apply(account, snapshot, source=Source.CREATE)
    metrics.ACCOUNTS_CREATED.labels(account.preset).inc()
    logger.info(
        "connected account created",
        extra={"connected_account_id": account.pk, "stripe_account_id": account.stripe_account_id},
    )
    return account


def seller_onboarding_start(*, user: User) -> tuple[ConnectedAccount, bool]:
    """ "Become a seller": the user's connected account, created on Stripe if it is not yet.
    Returns (account, created_now). Safe to call any number of times, concurrently too."""
    preset = _preset_configured()
    with transaction.atomic():
        # The unique user decides: a concurrent insert waits for ours, then finds our row.
        account, row_created = ConnectedAccount.objects.get_or_create(
            user=user,
            defaults={
                "preset": preset,
                "country": settings.CONNECT_ACCOUNT_COUNTRY,
                "livemode": livemode_expected(),
                "stripe_api": ConnectedAccount.StripeApi.V1,
            },
        )
        if not user.is_seller:
            User.objects.filter(pk=user.pk).update(is_seller=True)
            user.is_seller = True
    if account.status == AccountStatus.DEAUTHORIZED:
        raise ConflictError(
            "Your Stripe account was disconnected from Gavel; contact support.",
            code="account_deauthorized",
        )
    if account.stripe_account_id is None:
        account = _stripe_account_ensure(account_pk=account.pk)
    return account, row_created


# ---------------------------------------------------------------- refresh and events
def connected_account_refresh(*, account_pk: int) -> ConnectedAccount:
    """Re-read the account through the gateway and mirror it (explicit refresh)."""
    with transaction.atomic():
        account = connected_account_lock(account_pk=account_pk)
        if account.stripe_account_id is None or account.status in TERMINAL:
            return account
        try:
            snapshot = gateway.account_retrieve(account_id=account.stripe_account_id)
        except GatewayError as error:
            raise _gateway_refusal(error) from error
        _mirror_apply(account, snapshot, source=Source.REFRESH)
    return account


def _event_account_pk(event: IncomingEvent) -> int | None:
    stripe_account_id = event.account
    if not stripe_account_id and event.data_object.get("object") == "account":
        stripe_account_id = event.object_id
    if not stripe_account_id:
        return None
    return (
        ConnectedAccount.objects.filter(stripe_account_id=stripe_account_id)
        .values_list("pk", flat=True)
        .first()
    )


def connected_account_event_apply(*, event: IncomingEvent) -> bool:
    """Apply an ``account.*``, ``capability.*``, external account or person event: re-read the
    account through the gateway (the event says *that* something changed; Stripe's current
    state says *what*) and mirror it. An event older than the newest one applied is skipped,
    and the re-read is always current, so a late event never moves the record backwards.
    Returns whether the mirror changed. Gateway errors propagate: the pipeline retries."""
    account_pk = _event_account_pk(event)
    if account_pk is None:
        return False  # not one of Gavel's sellers (the legacy portal's are forwarded upstream)
    with transaction.atomic():
        account = connected_account_lock(account_pk=account_pk)
        if account.status in TERMINAL or account.stripe_account_id is None:
            return False
        created_at = datetime.fromtimestamp(event.created, tz=UTC)
        if account.stripe_event_created_at is not None and created_at < (
            account.stripe_event_created_at
        ):
            metrics.STALE_EVENTS.inc()
            return False
        snapshot = gateway.account_retrieve(account_id=account.stripe_account_id)
        return _mirror_apply(account, snapshot, source=Source.EVENT, event=event)


def connected_account_deauthorize(*, event: IncomingEvent) -> bool:
    """``account.application.deauthorized``: the seller disconnected Gavel. Terminal, applied
    whatever its age; Gavel can no longer read the account, so the flags are cleared here."""
    account_pk = _event_account_pk(event)
    if account_pk is None:
        return False
    with transaction.atomic():
        account = connected_account_lock(account_pk=account_pk)
        if account.status == AccountStatus.DEAUTHORIZED:
            return False
        return _status_move(
            account,
            target=AccountStatus.DEAUTHORIZED,
            values={"charges_enabled": False, "payouts_enabled": False},
            source=Source.DEAUTHORIZATION,
            event=event,
        )


# ---------------------------------------------------------------- legacy import
REFRESH_TASK = "gavel.connect.tasks.connected_account_refresh"
REFRESH_BATCH_TASK = "gavel.connect.tasks.connected_accounts_refresh"


@dataclass(frozen=True, slots=True)
class AccountImport:
    """One seller's existing Stripe account, read from the legacy portal."""

    user_id: int
    stripe_account_id: str
    stripe_api: str = ConnectedAccount.StripeApi.V1


@dataclass(frozen=True, slots=True)
class ImportResult:
    created: int
    already_imported: int
    conflicts: list[AccountImport]  # the user has another account, or the account another user


def connected_accounts_import(
    *, accounts: list[AccountImport], is_refresh_batched: bool = False
) -> ImportResult:
    """Load sellers' existing accounts (idempotent, one batch). A new row is ``unsynced`` until
    its refresh task (enqueued through the outbox) reads Stripe; the janitor retries it.

    ``is_refresh_batched`` (bulk imports): one refresh task for the whole batch instead of one
    per account, so a large import publishes one message per batch."""
    for item in accounts:
        if not item.stripe_account_id.startswith("acct_") or item.stripe_api not in (
            ConnectedAccount.StripeApi.values
        ):
            raise ServiceError(
                f"Not a connected account: {item.stripe_account_id!r} ({item.stripe_api})",
                code="invalid_import",
            )
    with transaction.atomic():
        with connection.cursor() as cursor:  # two arrays, not a parameter per id
            cursor.execute(
                "SELECT user_id, stripe_account_id FROM connect_connectedaccount"
                " WHERE user_id = ANY(%s::bigint[]) OR stripe_account_id = ANY(%s::text[])",
                [
                    [item.user_id for item in accounts],
                    [item.stripe_account_id for item in accounts],
                ],
            )
            recorded = cursor.fetchall()
        split = pairs_split(
            accounts, pair=lambda item: (item.user_id, item.stripe_account_id), recorded=recorded
        )
        fresh, already, conflicts = split.fresh, split.done, split.conflicts
        # Set-based (``rows_insert``): an import writes tens of thousands of rows, and
        # building them as models cost several times what the database does.
        created = rows_insert(
            ConnectedAccount,
            columns={
                "user_id": [item.user_id for item in fresh],
                "stripe_account_id": [item.stripe_account_id for item in fresh],
                "stripe_api": [item.stripe_api for item in fresh],
            },
            values={
                "preset": ConnectedAccount.Preset.OTHER,
                "livemode": livemode_expected(),
                "status": AccountStatus.UNSYNCED,
            },
            returning=("pk", "user_id", "stripe_account_id"),
            is_conflict_skipped=True,  # a concurrent import of the same rows: theirs stand
        )
        rows_insert(
            ConnectedAccountChange,
            columns={
                "account_id": [pk for pk, _, _ in created],
                "changed_fields": [
                    {"stripe_account_id": [None, stripe_id]} for _, _, stripe_id in created
                ],
            },
            values={
                "source": Source.IMPORT,
                "status_before": AccountStatus.UNSYNCED,
                "status_after": AccountStatus.UNSYNCED,
            },
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {User._meta.db_table} SET is_seller = true"  # noqa: S608 (a model's table)
                " WHERE id = ANY(%s::bigint[]) AND NOT is_seller",
                [[user_id for _, user_id, _ in created]],
            )
        if is_refresh_batched and created:
            outbox_enqueue(
                task_name=REFRESH_BATCH_TASK,
                kwargs={"connected_account_ids": sorted(pk for pk, _, _ in created)},
                queue="default",
            )
        for pk, _, _ in created if not is_refresh_batched else ():
            outbox_enqueue(
                task_name=REFRESH_TASK, kwargs={"connected_account_id": pk}, queue="default"
            )
    return ImportResult(created=len(created), already_imported=len(already), conflicts=conflicts)


@dataclass(frozen=True, slots=True)
class RefreshResult:
    refreshed: int
    failed: int  # left ``unsynced`` (or as they were) for the janitor's next run


def connected_accounts_refresh(*, account_pks: list[int]) -> RefreshResult:
    """Re-read many accounts (a batched import's refresh), one at a time, each in its own
    transaction: one account's failure does not stop the others."""
    refreshed = failed = 0
    for account_pk in account_pks:
        try:
            connected_account_refresh(account_pk=account_pk)
        except (ServiceError, ConnectedAccount.DoesNotExist):
            failed += 1
            logger.warning("connected account refresh failed", extra={"account_pk": account_pk})
            continue
        refreshed += 1
    return RefreshResult(refreshed=refreshed, failed=failed)


# ---------------------------------------------------------------- janitor
@dataclass(frozen=True, slots=True)
class JanitorResult:
    settled: int
    resynced: int
    failed: int


def connected_accounts_janitor() -> JanitorResult:
    """Settle rows whose create answer was lost (same idempotency key, so the account Stripe
    made is found, never a second one) and re-read accounts not synced for a while. One
    account's failure does not stop the others; the next run tries again."""
    now = timezone.now()
    batch: int = settings.CONNECT_JANITOR_BATCH_SIZE
    unsettled = ConnectedAccount.objects.filter(
        status=AccountStatus.CREATING,
        stripe_account_id__isnull=True,
        created_at__lte=now - timedelta(seconds=settings.CONNECT_SETTLE_AFTER_SECONDS),
    ).order_by("id")
    stale = (
        ConnectedAccount.objects.filter(stripe_account_id__isnull=False)
        .filter(
            Q(synced_at__lte=now - timedelta(hours=settings.CONNECT_RESYNC_AFTER_HOURS))
            | Q(status=AccountStatus.UNSYNCED)
        )
        .exclude(status__in=TERMINAL)
        .order_by(F("synced_at").asc(nulls_first=True), "id")
    )
    settled = resynced = failed = 0
    for account_pk in unsettled.values_list("pk", flat=True)[:batch]:
        try:
            _stripe_account_ensure(account_pk=account_pk)
        except ServiceError:  # past IDEMPOTENCY_WINDOW (logged there, left to support) included
            failed += 1
            continue
        settled += 1
    for account_pk in stale.values_list("pk", flat=True)[:batch]:
        try:
            connected_account_refresh(account_pk=account_pk)
        except ServiceError:
            failed += 1
            continue
        resynced += 1
    return JanitorResult(settled=settled, resynced=resynced, failed=failed)


# ---------------------------------------------------------------- links for the apps
@dataclass(frozen=True, slots=True)
class IssuedLink:
    url: str
    link_type: str
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class IssuedSession:
    account_id: str
    client_secret: str
    expires_at: datetime


def _own_account(*, user: User) -> ConnectedAccount:
    account = ConnectedAccount.objects.filter(user=user).first()
    if account is None:
        raise NotFoundError("You have no seller account yet.", code="no_connected_account")
    if account.stripe_account_id is None:
        raise ConflictError(
            "Your Stripe account is still being created; tap “Become a seller” again.",
            code="account_pending",
        )
    if account.status == AccountStatus.DEAUTHORIZED:
        raise ConflictError(
            "Your Stripe account was disconnected from Gavel; contact support.",
            code="account_deauthorized",
        )
    return account


def _redirect_url_check(url: str, field: str) -> None:
    prefixes: list[str] = settings.CONNECT_REDIRECT_URL_PREFIXES
    if not any(url.startswith(prefix) for prefix in prefixes):
        raise ServiceError(
            "This URL is not one of Gavel's apps.",
            code="redirect_url_not_allowed",
            fields={field: ["Must start with one of: " + ", ".join(prefixes)]},
        )


def _link_request(
    account: ConnectedAccount, *, kind: StripeLinkRequest.Kind, user: User, link_type: str = ""
) -> StripeLinkRequest:
    # Committed before the Stripe call: its id is the idempotency key.
    with transaction.atomic():
        return StripeLinkRequest.objects.create(
            account=account, kind=kind, link_type=link_type, requested_by=user
        )


def _link_answered(request: StripeLinkRequest, *, expires_at: datetime | None) -> None:
    StripeLinkRequest.objects.filter(pk=request.pk).update(succeeded=True, expires_at=expires_at)
    metrics.LINKS_ISSUED.labels(request.kind).inc()


def _link_failed(request: StripeLinkRequest, error: GatewayError) -> ServiceError:
    StripeLinkRequest.objects.filter(pk=request.pk).update(succeeded=False)
    return _gateway_refusal(error)


def onboarding_link_create(
    *, user: User, return_url: str = "", refresh_url: str = ""
) -> IssuedLink:
    """A fresh Stripe-hosted onboarding link (every call mints a new one: links expire within
    minutes and work once). ``account_update`` only where Stripe allows it (no Stripe
    Dashboard); accounts with a Dashboard use ``account_onboarding`` to give what is due."""
    account = _own_account(user=user)
    return_url = return_url or settings.CONNECT_ONBOARDING_RETURN_URL
    refresh_url = refresh_url or settings.CONNECT_ONBOARDING_REFRESH_URL
    _redirect_url_check(return_url, "return_url")
    _redirect_url_check(refresh_url, "refresh_url")
    link_type = (
        "account_update"
        if account.details_submitted and account.dashboard_type == "none"
        else "account_onboarding"
    )
    request = _link_request(
        account, kind=StripeLinkRequest.Kind.ACCOUNT_LINK, user=user, link_type=link_type
    )
    assert account.stripe_account_id is not None
    try:
        link = gateway.account_link_create(
            operation_id=request.pk,
            account_id=account.stripe_account_id,
            link_type=link_type,
            refresh_url=refresh_url,
            return_url=return_url,
        )
    except GatewayError as error:
        raise _link_failed(request, error) from error
    expires_at = _epoch(link.expires_at)
    _link_answered(request, expires_at=expires_at)
    return IssuedLink(url=link.url, link_type=link_type, expires_at=expires_at)


def account_session_create(*, user: User) -> IssuedSession:
    """A client secret for Stripe's embedded components (onboarding, account management,
    notification banner). Short-lived; the secret is never stored."""
    account = _own_account(user=user)
    request = _link_request(account, kind=StripeLinkRequest.Kind.ACCOUNT_SESSION, user=user)
    assert account.stripe_account_id is not None
    try:
        session = gateway.account_session_create(
            operation_id=request.pk, account_id=account.stripe_account_id
        )
    except GatewayError as error:
        raise _link_failed(request, error) from error
    expires_at = _epoch(session.expires_at)
    assert expires_at is not None
    _link_answered(request, expires_at=expires_at)
    return IssuedSession(
        account_id=session.account_id, client_secret=session.client_secret, expires_at=expires_at
    )


def dashboard_login_link_create(*, user: User) -> IssuedLink:
    """A one-time link into the Express Dashboard (payouts, bank account, tax forms)."""
    account = _own_account(user=user)
    if account.dashboard_type != "express":
        raise ConflictError(
            "Your account has no Express Dashboard"
            + (": sign in at dashboard.stripe.com." if account.dashboard_type == "full" else "."),
            code="dashboard_unavailable",
        )
    if not account.details_submitted:
        raise ConflictError(
            "Finish onboarding before opening your dashboard.", code="onboarding_incomplete"
        )
    request = _link_request(account, kind=StripeLinkRequest.Kind.LOGIN_LINK, user=user)
    assert account.stripe_account_id is not None
    try:
        link = gateway.login_link_create(
            operation_id=request.pk, account_id=account.stripe_account_id
        )
    except GatewayError as error:
        raise _link_failed(request, error) from error
    _link_answered(request, expires_at=None)
    return IssuedLink(url=link.url, link_type="express_dashboard", expires_at=None)
