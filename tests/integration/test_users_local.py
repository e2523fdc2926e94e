"""Users on DynamoDB Local: real transactions, real concurrency, one email per user."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest

from core.config import Settings
from core.errors import AlreadyExists, ConflictError
from models import EmailClaim, User
from repositories.users import create_user, delete_user, find_user_by_email, get_user, update_user
from tests.helpers import claims, race, random_email, raw_get, raw_scan, seed_user

ROUNDS = 5


def _winners(outcomes: list[Any], loser: type[BaseException] | tuple[type[BaseException], ...]) -> list[Any]:
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, loser):
            raise outcome
    return [o for o in outcomes if not isinstance(o, BaseException)]


def test_two_stale_updates_of_the_same_user_one_wins_and_the_other_conflicts(local_table: Settings) -> None:
    user_id, _ = seed_user(local_table)
    for round_ in range(ROUNDS):
        stale = get_user(user_id)
        outcomes = race(partial(update_user, stale, name=f"left {round_}"),
                        partial(update_user, stale, name=f"right {round_}"))
        [winner] = _winners(outcomes, ConflictError)
        stored = get_user(user_id)
        assert (stored.name, stored.version) == (winner.name, stale.version + 1)


def test_two_stale_email_changes_one_wins_and_only_its_email_is_claimed(local_table: Settings) -> None:
    user_id, _ = seed_user(local_table)
    for _ in range(ROUNDS):
        stale = get_user(user_id)
        outcomes = race(partial(update_user, stale, email=random_email("left")),
                        partial(update_user, stale, email=random_email("right")))
        [winner] = _winners(outcomes, ConflictError)
        stored = get_user(user_id)
        assert stored.email == winner.email and stored.version == stale.version + 1
        assert [c["ClaimedEmail"]["S"] for c in claims(local_table)] == [stored.email]


def test_two_creates_of_one_email_in_different_cases_make_one_user(local_table: Settings) -> None:
    for _ in range(ROUNDS):
        email = random_email("race")
        outcomes = race(partial(create_user, email, "Lower"), partial(create_user, email.upper(), "Upper"))
        [winner] = _winners(outcomes, (AlreadyExists, ConflictError))
        claim = raw_get(local_table, EmailClaim, email=email)
        assert claim is not None and claim["UserId"] == {"S": winner.user_id}
    users = [item for item in raw_scan(local_table) if item["EntityType"]["S"] == "USER"]
    assert len(users) == ROUNDS == len(claims(local_table))


def test_a_user_lives_and_dies_with_its_email_claim(local_table: Settings) -> None:
    user = create_user("Life.Cycle@Example.com", "Ada")
    with pytest.raises(AlreadyExists):
        create_user("life.cycle@example.COM", "Impostor")
    found = find_user_by_email("LIFE.CYCLE@example.com")
    assert found is not None and found.user_id == user.user_id

    moved = update_user(get_user(user.user_id), email="moved@example.com", name="Ada L")
    assert [c["ClaimedEmail"]["S"] for c in claims(local_table)] == ["moved@example.com"]
    assert find_user_by_email("life.cycle@example.com") is None
    other = create_user("life.cycle@example.com", "Second owner of the freed address")
    with pytest.raises(AlreadyExists):
        update_user(moved, email="LIFE.CYCLE@example.com")
    with pytest.raises(ConflictError):
        delete_user(user)  # stale: version 1, stored is 2

    delete_user(moved)
    assert raw_get(local_table, User, user_id=user.user_id) is None
    assert [c["UserId"]["S"] for c in claims(local_table)] == [other.user_id]


def test_an_email_changed_in_memory_never_leaves_the_stored_claim_behind(local_table: Settings) -> None:
    user_id, stored_email = seed_user(local_table)
    user = get_user(user_id)
    user.email = random_email("mutated")  # what was read is remembered: the stored claim moves
    moved = update_user(user, email=random_email("new"))
    assert raw_get(local_table, EmailClaim, email=stored_email) is None
    held = [(c["ClaimedEmail"]["S"], c["UserId"]["S"]) for c in claims(local_table)]
    assert held == [(moved.email, user_id)]
    moved.email = random_email("mutated-again")
    delete_user(moved)
    assert claims(local_table) == []
    assert [item["SK"]["S"] for item in raw_scan(local_table)] == ["RETIRED"]


def test_a_stale_delete_and_an_update_race_one_wins(local_table: Settings) -> None:
    user_id, _ = seed_user(local_table)
    stale = get_user(user_id)
    outcomes = race(partial(update_user, stale, email=random_email()), partial(delete_user, stale))
    assert sum(isinstance(o, ConflictError) for o in outcomes) == 1
    assert not any(isinstance(o, BaseException) and not isinstance(o, ConflictError) for o in outcomes)
    items = raw_scan(local_table)
    if isinstance(outcomes[0], ConflictError):  # the delete won: only the retired id is left
        assert [item["SK"]["S"] for item in items] == ["RETIRED"]
    else:  # the update won: the user and exactly its new claim
        assert [c["ClaimedEmail"]["S"] for c in claims(local_table)] == [get_user(user_id).email]
