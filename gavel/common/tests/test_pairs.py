"""``pairs_split``: an import batch of one-to-one pairs, split in its order."""

from __future__ import annotations

from gavel.common.pairs import pairs_split


def _split(
    items: list[tuple[str, str]],
    recorded: list[tuple[str, str | None]],
    also_done: set[tuple[str, str]] | None = None,
) -> tuple[list[tuple[str, str]], ...]:
    split = pairs_split(
        items, pair=lambda item: item, recorded=recorded, also_done=also_done or set()
    )
    return split.done, split.conflicts, split.fresh


def test_recorded_pairs_are_done_and_taken_owners_or_ids_conflict() -> None:
    assert _split(
        [("u1", "a1"), ("u1", "a9"), ("u9", "a2"), ("u3", "a3")],
        recorded=[("u1", "a1"), ("u2", "a2")],
    ) == ([("u1", "a1")], [("u1", "a9"), ("u9", "a2")], [("u3", "a3")])


def test_only_a_fresh_pair_takes_its_owner_and_id_for_the_rest_of_the_batch() -> None:
    # The second pair conflicts with the first; the third then meets nothing: a conflict
    # takes neither its owner nor its id.
    assert _split([("u1", "a1"), ("u1", "a2"), ("u2", "a2"), ("u3", "a1")], recorded=[]) == (
        [],
        [("u1", "a2"), ("u3", "a1")],
        [("u1", "a1"), ("u2", "a2")],
    )


def test_a_pair_also_done_counts_as_done_even_where_it_would_conflict() -> None:
    # The user's row forgot its old id (recorded: no id now): naming the old id again is done.
    assert _split(
        [("u1", "old"), ("u1", "new")],
        recorded=[("u1", None)],
        also_done={("u1", "old")},
    ) == ([("u1", "old")], [("u1", "new")], [])
