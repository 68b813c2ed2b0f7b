"""Stripe's requirement keys in plain words, for the seller's status screen.

Keys look like ``individual.dob.day``, ``representative.address.city``,
``person_1Nv0abc.verification.document``, ``external_account``, ``tos_acceptance.date``.
A key is split into who it is about (the seller, their representative, a company owner ...) and
what is asked; unknown keys get a generic sentence, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass

# Whole keys (or key prefixes) that are not about a person.
BUSINESS_SENTENCES: dict[str, str] = {
    "external_account": "Add the bank account your payouts go to.",
    "tos_acceptance": "Accept Stripe's services agreement.",
    "business_type": "Say whether you sell as an individual or as a company.",
    "business_profile.mcc": "Choose the category of goods you sell.",
    "business_profile.url": "Give your website, or describe what you sell.",
    "business_profile.product_description": "Describe what you sell.",
    "business_profile.support_phone": "Give a phone number buyers can reach you on.",
    "business_profile": "Complete your business profile.",
    "company.name": "Give your company's legal name.",
    "company.tax_id": "Give your company's tax ID.",
    "company.address": "Give your company's registered address.",
    "company.phone": "Give your company's phone number.",
    "company.owners_provided": "List your company's owners.",
    "company.directors_provided": "List your company's directors.",
    "company.executives_provided": "List your company's executives.",
    "company.verification.document": "Upload a document that proves your company exists.",
    "company": "Complete your company's details.",
    "settings.payments.statement_descriptor": "Choose how your sales appear on card statements.",
}

# What is asked about a person, by the part of the key after the person.
PERSON_FIELDS: dict[str, str] = {
    "dob": "date of birth",
    "first_name": "full name",
    "last_name": "full name",
    "email": "email address",
    "phone": "phone number",
    "address": "home address",
    "ssn_last_4": "last 4 digits of the Social Security number",
    "id_number": "ID number",
    "verification.document": "identity document (a photo of an ID)",
    "verification.additional_document": "proof of address document",
    "relationship.title": "job title",
    "relationship": "role in the company",
}

PERSON_OWNERS: dict[str, tuple[str, str]] = {
    # prefix: (possessive for one person, generic for a group)
    "individual": ("your", "your"),
    "representative": ("your company representative's", "your company representative's"),
    "owners": ("an owner's", "each owner's"),
    "directors": ("a director's", "each director's"),
    "executives": ("an executive's", "each executive's"),
}

GENERIC_SENTENCE = "Stripe needs more information ({key}); open your Stripe onboarding to add it."


def _longest_prefix(key: str, table: dict[str, str]) -> str | None:
    for length in range(key.count(".") + 1, 0, -1):
        prefix = ".".join(key.split(".")[:length])
        if prefix in table:
            return table[prefix]
    return None


def requirement_sentence(key: str) -> str:
    """One plain sentence for one Stripe requirement key."""
    head, _, rest = key.partition(".")
    owner: str | None = None
    if head in PERSON_OWNERS:
        owner = PERSON_OWNERS[head][1]
    elif head.startswith("person_"):
        owner = "a company person's"
    if owner is not None and rest:
        what = _longest_prefix(rest, PERSON_FIELDS)
        if what is not None:
            sentence = f"Give {owner} {what}."
            return sentence[0].upper() + sentence[1:]
    business = _longest_prefix(key, BUSINESS_SENTENCES)
    if business is not None:
        return business
    return GENERIC_SENTENCE.format(key=key)


@dataclass(frozen=True, slots=True)
class RequirementItem:
    message: str
    keys: tuple[str, ...]


def requirements_explain(keys: list[str]) -> list[RequirementItem]:
    """Sentences for ``keys``, one per distinct sentence (``dob.day``, ``.month`` and ``.year``
    are one thing to provide), in the order Stripe listed them."""
    grouped: dict[str, list[str]] = {}
    for key in keys:
        grouped.setdefault(requirement_sentence(key), []).append(key)
    return [RequirementItem(message=message, keys=tuple(ks)) for message, ks in grouped.items()]


DISABLED_REASONS: dict[str, str] = {
    "requirements.past_due": "Stripe paused your account because information is overdue.",
    "requirements.pending_verification": "Stripe is verifying the information you gave.",
    "under_review": "Stripe is reviewing your account.",
    "listed": "Stripe is reviewing your account against restricted lists.",
    "platform_paused": "Gavel paused your account; contact support.",
    "rejected.fraud": "Stripe rejected your account (suspected fraud); contact support.",
    "rejected.terms_of_service": "Stripe rejected your account (terms of service).",
    "rejected.listed": "Stripe rejected your account (restricted lists).",
    "rejected.other": "Stripe rejected your account; contact support.",
    "action_required.requested_capabilities": "Stripe needs more information to enable selling.",
}


def disabled_reason_sentence(reason: str) -> str:
    if not reason:
        return ""
    known = DISABLED_REASONS.get(reason)
    if known is not None:
        return known
    if reason.startswith("rejected."):
        return DISABLED_REASONS["rejected.other"]
    return f"Stripe restricted your account ({reason})."
