"""One-to-one pairs brought in by an import: an owner (a user) with one outside id (a Stripe
account, a Stripe customer), each id with one owner."""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
Pair = tuple[Hashable, Hashable]


@dataclass(frozen=True, slots=True)
class PairsSplit(Generic[T]):
    done: list[T] = field(default_factory=list)  # recorded already: nothing to do
    conflicts: list[T] = field(default_factory=list)  # owner or id taken by another pair
    fresh: list[T] = field(default_factory=list)  # to record


def pairs_split(
    items: Sequence[T],
    *,
    pair: Callable[[T], Pair],
    recorded: Collection[Pair],
    also_done: Collection[Pair] = (),
) -> PairsSplit[T]:
    """Split a batch in its order: a pair ``recorded`` (or in ``also_done``) is done; one whose
    owner or id a recorded pair, or an earlier fresh one of the batch, already has is a
    conflict; the rest are fresh."""
    split: PairsSplit[T] = PairsSplit()
    known = set(recorded)
    owners = {owner for owner, _ in known}
    ids = {outside_id for _, outside_id in known}
    for item in items:
        owner, outside_id = pair(item)
        if (owner, outside_id) in known or (owner, outside_id) in also_done:
            split.done.append(item)
        elif owner in owners or outside_id in ids:
            split.conflicts.append(item)  # also a second pair for one owner or id in a batch
        else:
            split.fresh.append(item)
            known.add((owner, outside_id))
            owners.add(owner)
            ids.add(outside_id)
    return split
