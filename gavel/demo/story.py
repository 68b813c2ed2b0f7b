"""The scripted marketplace story. Each capability adds its chapter to ``CHAPTERS``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.test import Client

from gavel.demo.chapters_auctions import chapter_auctions
from gavel.demo.chapters_connect import chapter_seller_onboarding
from gavel.demo.chapters_legacy import chapter_legacy_import
from gavel.demo.chapters_payments import chapter_payments
from gavel.demo.narrator import Narrator

DEMO_PASSWORD = "demo passphrase 2026"  # noqa: S105 - the demo's throwaway accounts


@dataclass
class StoryContext:
    """What chapters share: the narrator, the API client, the sandbox and the cast."""

    narrator: Narrator
    sandbox: Any
    client: Client = field(default_factory=Client)
    tokens: dict[str, str] = field(default_factory=dict)
    cast: dict[str, Any] = field(default_factory=dict)

    def api(
        self,
        method: str,
        path: str,
        *,
        as_user: str | None = None,
        body: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        expect: int = 200,
    ) -> Any:
        """Call the public API as one of the cast, exactly as the mobile app would."""
        headers: dict[str, str] = {}
        if as_user is not None:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {self.tokens[as_user]}"
        if idempotency_key is not None:
            headers["HTTP_IDEMPOTENCY_KEY"] = idempotency_key
        call = getattr(self.client, method.lower())
        response = call(path, body or {}, content_type="application/json", **headers)
        if response.status_code != expect:
            raise RuntimeError(
                f"{method} {path} answered {response.status_code}, expected {expect}: "
                f"{response.content[:500]!r}"
            )
        return response.json() if response.content else None

    def sign_up(self, name: str, *, idempotency_key: str | None = None) -> dict[str, Any]:
        """``name`` registers as ``<name>@example.com`` and signs in, as the app does; the
        access token is kept for later calls ``as_user=name``. Returns the new account."""
        body = {
            "email": f"{name}@example.com",
            "password": DEMO_PASSWORD,
            "display_name": name.title(),
        }
        account: dict[str, Any] = self.api(
            "POST",
            "/api/v1/auth/register/",
            body=body,
            idempotency_key=idempotency_key,
            expect=201,
        )
        tokens = self.api(
            "POST",
            "/api/v1/auth/token/",
            body={"email": body["email"], "password": DEMO_PASSWORD},
        )
        self.tokens[name] = tokens["access"]
        return account


Chapter = Callable[[StoryContext], None]


def chapter_people(context: StoryContext) -> None:
    narrator = context.narrator
    narrator.chapter("People join the marketplace")
    for name in ("ada", "sam"):
        account = context.sign_up(name, idempotency_key=f"demo-{name}")
        narrator.step(
            f"{name.title()} signs up with {account['email']} and gets account #{account['id']}."
        )
        context.cast[name] = account
    ada = {"email": "ada@example.com", "password": DEMO_PASSWORD, "display_name": "Ada"}
    retried = context.api(
        "POST",
        "/api/v1/auth/register/",
        body=ada,
        idempotency_key="demo-ada",
        expect=201,
    )
    narrator.step(
        "Ada's phone lost the answer and sent the sign-up again with the same Idempotency-Key: "
        f"Gavel replayed the first answer (account #{retried['id']}) instead of a second account."
    )


def books_summary() -> tuple[str, bool]:
    """The story's last line: ``ledger balanced`` only when the trial balance is zero in every
    currency AND reconciliation with Stripe finds no difference. Needs the sandbox bound."""
    from gavel.ledger.reconciliation import reconciliation_run
    from gavel.ledger.selectors import trial_balance

    reconciliation = reconciliation_run()
    balances = trial_balance()
    clean = all(total == 0 for total in balances.values()) and reconciliation.is_clean
    if clean:
        return (
            f"ledger balanced, reconciled with Stripe ({reconciliation.transactions_compared} "
            "balance transactions, 0 differences)",
            True,
        )
    currencies = ", ".join(f"{currency} {total:+d}" for currency, total in sorted(balances.items()))
    return (
        f"ledger NOT in balance or not reconciled ({currencies}; "
        f"{len(reconciliation.differences)} differences with Stripe)",
        False,
    )


CHAPTERS: list[Chapter] = [
    chapter_people,
    chapter_seller_onboarding,
    chapter_legacy_import,
    chapter_auctions,
    chapter_payments,
]
