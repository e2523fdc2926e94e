"""Users on moto: one email per user (any case), optimistic updates, the claim moves with the email."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from pynamodb.exceptions import PynamoDBException, TransactWriteError

from core.config import Settings
from core.errors import (
    AlreadyExists,
    ConflictError,
    DataLayerError,
    InvalidInput,
    InvalidKey,
    NotFound,
    RetriesExhausted,
    Throttled,
    WriteOutcomeUnknown,
)
from models import EmailClaim, User
from repositories import cache
from repositories.users import create_user, delete_user, find_user_by_email, get_user, update_user
from tests.conftest import ClientHooks
from tests.helpers import claims, count_calls, random_email, raw_client, raw_get, raw_scan, seed_user

# --- create_user -----------------------------------------------------------------------------------


def test_create_user_stores_the_user_and_its_email_claim(moto_table: Settings) -> None:
    user = create_user("  Ada.Lovelace@Example.COM ", "Ada Lovelace")
    assert user.email == "ada.lovelace@example.com" and user.name == "Ada Lovelace" and user.version == 1
    stored = raw_get(moto_table, User, user_id=user.user_id)
    assert stored is not None
    assert stored["Email"] == {"S": "ada.lovelace@example.com"}
    assert stored["Name"] == {"S": "Ada Lovelace"} and stored["Version"] == {"N": "1"}
    claim = raw_get(moto_table, EmailClaim, email="ada.lovelace@example.com")
    assert claim is not None and claim["UserId"] == {"S": user.user_id}
    assert "Email" not in claim  # claims stay out of the Email-Index


def test_create_user_makes_a_uuid4_hex_id_by_default(moto_table: Settings) -> None:
    first, second = create_user(random_email(), "A"), create_user(random_email(), "B")
    assert uuid.UUID(hex=first.user_id).version == 4 and first.user_id == uuid.UUID(first.user_id).hex
    assert first.user_id != second.user_id


def test_create_user_keeps_a_given_id(moto_table: Settings) -> None:
    user_id = f"ext-{uuid.uuid4().hex}"
    assert create_user(random_email(), "Ada", user_id=user_id).user_id == user_id
    assert raw_get(moto_table, User, user_id=user_id) is not None


def test_create_user_with_an_email_taken_in_another_case_writes_nothing(moto_table: Settings) -> None:
    first = create_user("Grace@Example.com", "Grace")
    before = raw_scan(moto_table)
    with pytest.raises(AlreadyExists, match="email") as raised:
        create_user("GRACE@example.COM", "Impostor")
    assert raised.value.__cause__ is not None
    assert raw_scan(moto_table) == before
    assert [c["UserId"]["S"] for c in claims(moto_table)] == [first.user_id]


def test_create_user_with_a_taken_id_writes_nothing(moto_table: Settings) -> None:
    user_id, _ = seed_user(moto_table)
    before = raw_scan(moto_table)
    with pytest.raises(AlreadyExists, match="id exists already"):
        create_user(random_email(), "Other", user_id=user_id)
    assert raw_scan(moto_table) == before


BAD_CREATE_INPUTS: list[tuple[dict[str, Any], type[Exception]]] = [
    ({"email": "no-at-sign.example.com"}, InvalidInput),
    ({"email": "two@@example.com"}, InvalidInput),
    ({"email": "a@b@example.com"}, InvalidInput),
    ({"email": "spa ce@example.com"}, InvalidInput),
    ({"email": "nodot@localhost"}, InvalidInput),
    ({"email": "dots@example..com"}, InvalidInput),
    ({"email": "@example.com"}, InvalidInput),
    ({"email": ""}, InvalidInput),
    ({"email": "x" * 250 + "@example.com"}, InvalidInput),
    ({"email": "x" * 65 + "@example.com"}, InvalidInput),
    ({"email": "hash#tag@example.com"}, InvalidKey),
    ({"email": None}, InvalidInput),
    ({"email": 42}, InvalidInput),
    ({"name": ""}, InvalidInput),
    ({"name": "   "}, InvalidInput),
    ({"name": "n" * 257}, InvalidInput),
    ({"name": None}, InvalidInput),
    ({"user_id": ""}, InvalidKey),
    ({"user_id": "a#b"}, InvalidKey),
    ({"user_id": "x" * 3000}, InvalidKey),
    ({"user_id": 7}, InvalidInput),
]


@pytest.mark.parametrize(("override", "error"), BAD_CREATE_INPUTS)
def test_create_user_refuses_bad_input_and_writes_nothing(
    moto_table: Settings, override: dict[str, Any], error: type[Exception]
) -> None:
    seed_user(moto_table)
    before = raw_scan(moto_table)
    arguments: dict[str, Any] = {"email": random_email(), "name": "Ada", **override}
    with pytest.raises(error):
        create_user(arguments.pop("email"), arguments.pop("name"), **arguments)
    assert raw_scan(moto_table) == before


# --- reads -----------------------------------------------------------------------------------------


def test_get_user_reads_a_stored_user(moto_table: Settings) -> None:
    user_id, email = seed_user(moto_table, name="Seeded", version=4)
    user = get_user(user_id)
    assert (user.user_id, user.email, user.name, user.version) == (user_id, email, "Seeded", 4)


def test_get_user_of_an_unknown_id_raises_not_found(moto_table: Settings) -> None:
    with pytest.raises(NotFound) as raised:
        get_user(uuid.uuid4().hex)
    assert raised.value.__cause__ is not None


@pytest.mark.parametrize(("user_id", "error"), [("", InvalidKey), ("a#b", InvalidKey), (None, InvalidInput)])
def test_get_user_refuses_a_bad_id(moto_table: Settings, user_id: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        get_user(user_id)


def test_find_user_by_email_finds_the_user_in_any_case(moto_table: Settings) -> None:
    user_id, email = seed_user(moto_table)
    found = find_user_by_email(email.upper())
    assert found is not None and found.user_id == user_id


def test_find_user_by_email_returns_none_for_an_unknown_email(moto_table: Settings) -> None:
    seed_user(moto_table)
    assert find_user_by_email(random_email()) is None


def test_find_user_by_email_ignores_a_claim_without_its_user(moto_table: Settings) -> None:
    user_id, email = seed_user(moto_table)
    raw_client(moto_table).delete_item(TableName=moto_table.table_name, Key={
        "PK": {"S": User.key_template("pk").compose(user_id=user_id)},
        "SK": {"S": User.key_template("sk").compose()},
    })
    assert find_user_by_email(email) is None


def test_find_user_by_email_refuses_a_malformed_email(moto_table: Settings) -> None:
    with pytest.raises(InvalidInput):
        find_user_by_email("not an email")


# --- update_user -----------------------------------------------------------------------------------


def test_update_user_changes_the_name_and_bumps_the_version(moto_table: Settings) -> None:
    user_id, email = seed_user(moto_table, name="Old")
    user = get_user(user_id)
    updated = update_user(user, name="New")
    assert (updated.name, updated.email, updated.version) == ("New", email, 2)
    assert updated.updated_at is not None and user.updated_at is not None
    assert updated.updated_at > user.updated_at
    assert (user.name, user.version) == ("Old", 1)  # the argument is left as it was
    stored = raw_get(moto_table, User, user_id=user_id)
    assert stored is not None and stored["Name"] == {"S": "New"} and stored["Version"] == {"N": "2"}


def test_update_user_with_a_stale_user_raises_conflict_and_changes_nothing(moto_table: Settings) -> None:
    user_id, _ = seed_user(moto_table)
    stale = get_user(user_id)
    update_user(stale, name="First")
    before = raw_scan(moto_table)
    with pytest.raises(ConflictError) as raised:
        update_user(stale, name="Second")
    assert raised.value.__cause__ is not None
    assert raw_scan(moto_table) == before


def test_update_user_moves_the_email_claim(moto_table: Settings) -> None:
    user_id, old_email = seed_user(moto_table)
    new_email = random_email("moved")
    updated = update_user(get_user(user_id), email=new_email.upper(), name="Renamed")
    assert (updated.email, updated.name, updated.version) == (new_email, "Renamed", 2)
    assert raw_get(moto_table, EmailClaim, email=old_email) is None
    claim = raw_get(moto_table, EmailClaim, email=new_email)
    assert claim is not None and claim["UserId"] == {"S": user_id}
    stored = get_user(user_id)
    assert (stored.email, stored.name, stored.version) == (new_email, "Renamed", 2)
    assert stored.updated_at == updated.updated_at
    assert find_user_by_email(new_email) is not None and find_user_by_email(old_email) is None


def test_update_user_to_an_email_taken_in_another_case_raises_already_exists(moto_table: Settings) -> None:
    _, taken = seed_user(moto_table)
    user_id, _ = seed_user(moto_table)
    before = raw_scan(moto_table)
    with pytest.raises(AlreadyExists):
        update_user(get_user(user_id), email=taken.upper())
    assert raw_scan(moto_table) == before


def test_update_user_with_a_stale_user_and_a_new_email_changes_nothing(moto_table: Settings) -> None:
    user_id, _ = seed_user(moto_table)
    stale = get_user(user_id)
    update_user(stale, name="First")
    before = raw_scan(moto_table)
    with pytest.raises(ConflictError):
        update_user(stale, email=random_email())
    assert raw_scan(moto_table) == before


def test_update_user_with_the_same_email_in_another_case_keeps_the_claim(moto_table: Settings) -> None:
    user_id, email = seed_user(moto_table)
    claim_before = raw_get(moto_table, EmailClaim, email=email)
    updated = update_user(get_user(user_id), email=email.upper())
    assert updated.email == email and updated.version == 2
    assert raw_get(moto_table, EmailClaim, email=email) == claim_before


def test_update_user_of_a_user_without_a_claim_claims_the_new_email(moto_table: Settings) -> None:
    user_id, _ = seed_user(moto_table, claim=False)
    new_email = random_email()
    update_user(get_user(user_id), email=new_email)
    assert [c["ClaimedEmail"]["S"] for c in claims(moto_table)] == [new_email]


def test_update_user_never_deletes_another_users_claim(moto_table: Settings) -> None:
    other_id, shared = seed_user(moto_table)
    user_id, _ = seed_user(moto_table, email=shared, claim=False)  # inconsistent data, on purpose
    before = raw_scan(moto_table)
    with pytest.raises(ConflictError, match="claimed by another user"):
        update_user(get_user(user_id), email=random_email())
    assert raw_scan(moto_table) == before
    claim = raw_get(moto_table, EmailClaim, email=shared)
    assert claim is not None and claim["UserId"] == {"S": other_id}


def test_update_user_of_a_deleted_user_raises_conflict_and_recreates_nothing(moto_table: Settings) -> None:
    user_id, _ = seed_user(moto_table)
    user = get_user(user_id)
    delete_user(user)
    retired = raw_scan(moto_table)
    assert [item["SK"]["S"] for item in retired] == ["RETIRED"]  # the id is never reused
    for change in ({"name": "Ghost"}, {"email": random_email()}):
        with pytest.raises(ConflictError):
            update_user(user, **change)
    assert raw_scan(moto_table) == retired


@pytest.mark.parametrize("change", ["new email", "the email set in memory", "name only"])
def test_update_user_moves_the_stored_emails_claim_whatever_was_changed_in_memory(
    moto_table: Settings, change: str
) -> None:
    user_id, stored_email = seed_user(moto_table)
    user = get_user(user_id)
    user.email = random_email("mutated")  # not what is stored, and claimed by no one
    arguments = {
        "new email": {"email": random_email("new")},
        "the email set in memory": {"email": user.email},
        "name only": {"name": "Renamed"},
    }[change]
    updated = update_user(user, **arguments)
    stored = raw_get(moto_table, User, user_id=user_id)
    assert stored is not None
    expected = arguments.get("email", stored_email)
    assert stored["Email"] == {"S": expected} and updated.email == expected
    # The one claim is the stored email's: the in-memory change neither moved nor orphaned one.
    assert [(c["ClaimedEmail"]["S"], c["UserId"]["S"]) for c in claims(moto_table)] == [(expected, user_id)]


def test_update_user_of_a_hand_made_user_with_another_email_than_stored_is_refused(
    moto_table: Settings,
) -> None:
    user_id, _ = seed_user(moto_table)
    user = User(user_id=user_id, email=random_email("guess"), name="Ada", version=1)  # never read
    before = raw_scan(moto_table)
    with pytest.raises(ConflictError) as raised:
        update_user(user, email=random_email("new"))
    assert raised.value.__cause__ is not None
    assert raw_scan(moto_table) == before


def test_delete_user_frees_the_stored_email_even_when_it_was_changed_in_memory(
    moto_table: Settings,
) -> None:
    user_id, stored_email = seed_user(moto_table)
    user = get_user(user_id)
    user.email = random_email("mutated")
    delete_user(user)
    assert [item["SK"]["S"] for item in raw_scan(moto_table)] == ["RETIRED"]
    assert create_user(stored_email, "Next owner").email == stored_email


def _unsaved_user() -> User:
    return User(user_id=uuid.uuid4().hex, email=random_email(), name="Never saved")


@pytest.mark.parametrize(("make_user", "change", "error"), [
    ("stored", {}, InvalidInput),
    ("stored", {"name": ""}, InvalidInput),
    ("stored", {"name": 5}, InvalidInput),
    ("stored", {"email": "nope"}, InvalidInput),
    ("stored", {"email": "a#b@example.com"}, InvalidKey),
    ("unsaved", {"name": "X"}, InvalidInput),
    ("not a user", {"name": "X"}, InvalidInput),
])
def test_update_user_refuses_bad_input_and_writes_nothing(
    moto_table: Settings, make_user: str, change: dict[str, Any], error: type[Exception]
) -> None:
    user_id, _ = seed_user(moto_table)
    makers: dict[str, Callable[[], Any]] = {
        "stored": lambda: get_user(user_id),
        "unsaved": _unsaved_user,
        "not a user": lambda: {"user_id": user_id},
    }
    user = makers[make_user]()
    before = raw_scan(moto_table)
    with pytest.raises(error):
        update_user(user, **change)
    assert raw_scan(moto_table) == before


# --- delete_user -----------------------------------------------------------------------------------


def test_delete_user_deletes_the_user_and_frees_the_email(moto_table: Settings) -> None:
    user_id, email = seed_user(moto_table)
    _, other_email = seed_user(moto_table)
    delete_user(get_user(user_id))
    assert raw_get(moto_table, User, user_id=user_id) is None
    assert [c["ClaimedEmail"]["S"] for c in claims(moto_table)] == [other_email]
    assert create_user(email.upper(), "Next owner").email == email


def test_delete_user_with_a_stale_user_raises_conflict_and_deletes_nothing(moto_table: Settings) -> None:
    user_id, _ = seed_user(moto_table)
    stale = get_user(user_id)
    update_user(stale, name="Changed")
    before = raw_scan(moto_table)
    with pytest.raises(ConflictError):
        delete_user(stale)
    assert raw_scan(moto_table) == before


def test_delete_user_twice_raises_conflict(moto_table: Settings) -> None:
    user_id, _ = seed_user(moto_table)
    user = get_user(user_id)
    delete_user(user)
    with pytest.raises(ConflictError):
        delete_user(user)


def test_delete_user_of_a_user_without_a_claim_deletes_the_user(moto_table: Settings) -> None:
    user_id, _ = seed_user(moto_table, claim=False)
    delete_user(get_user(user_id))
    assert [item["SK"]["S"] for item in raw_scan(moto_table)] == ["RETIRED"]


@pytest.mark.parametrize("user", [None, "user-id", _unsaved_user])
def test_delete_user_refuses_what_is_not_a_stored_user(moto_table: Settings, user: Any) -> None:
    seed_user(moto_table)
    before = raw_scan(moto_table)
    with pytest.raises(InvalidInput):
        delete_user(user() if callable(user) else user)
    assert raw_scan(moto_table) == before


# --- the read-through cache ------------------------------------------------------------------------


def test_with_the_cache_on_get_user_twice_makes_one_get_item(moto_table: Settings) -> None:
    cache.configure(ttl_seconds=60)
    user_id, _ = seed_user(moto_table, name="Cached")
    calls = count_calls(User, "GetItem")
    first, second = get_user(user_id), get_user(user_id)
    assert len(calls) == 1
    assert first.name == second.name == "Cached"


def test_the_cache_hands_out_copies(moto_table: Settings) -> None:
    cache.configure(ttl_seconds=60)
    user_id, _ = seed_user(moto_table, name="Cached")
    get_user(user_id).name = "Scribbled on"
    assert get_user(user_id).name == "Cached"


def test_update_user_invalidates_the_cache(moto_table: Settings) -> None:
    cache.configure(ttl_seconds=60)
    user_id, _ = seed_user(moto_table, name="Before")
    calls = count_calls(User, "GetItem")
    update_user(get_user(user_id), name="After")
    assert get_user(user_id).name == "After"
    assert len(calls) == 2


def test_delete_user_invalidates_the_cache(moto_table: Settings) -> None:
    cache.configure(ttl_seconds=60)
    user_id, _ = seed_user(moto_table)
    delete_user(get_user(user_id))
    with pytest.raises(NotFound):
        get_user(user_id)


def test_without_configuration_the_cache_is_off(moto_table: Settings) -> None:
    user_id, _ = seed_user(moto_table)
    calls = count_calls(User, "GetItem")
    get_user(user_id)
    get_user(user_id)
    assert len(calls) == 2


def test_the_cache_loads_a_user_with_a_strongly_consistent_read(
    moto_table: Settings, client_hooks: ClientHooks
) -> None:
    # An eventually consistent load right after an invalidation could cache an old copy for a TTL.
    cache.configure(ttl_seconds=60)
    user_id, _ = seed_user(moto_table)
    sent = client_hooks.record(User, "GetItem")
    get_user(user_id)
    get_user(user_id)
    assert [request.get("ConsistentRead") for request in sent] == [True]


# --- errors nobody expects ---------------------------------------------------------------------------


def test_get_user_throttled_after_botocores_retries_raises_retries_exhausted_with_the_cause(
    moto_table: Settings, client_hooks: ClientHooks
) -> None:
    user_id, _ = seed_user(moto_table)
    client_hooks.fail(User, "GetItem", "ProvisionedThroughputExceededException")
    with pytest.raises(RetriesExhausted) as raised:
        get_user(user_id)
    assert isinstance(raised.value.__cause__, (PynamoDBException, ClientError))


@pytest.mark.parametrize(("code", "reasons", "error"), [
    ("ThrottlingException", (), Throttled),
    ("TransactionCanceledException", ("None", "ThrottlingError"), Throttled),
    ("InternalServerError", (), WriteOutcomeUnknown),  # a 5xx after botocore's retries: unknown
    ("ValidationException", (), DataLayerError),
])
def test_create_user_maps_an_unexpected_transaction_error_into_the_tree_and_writes_nothing(
    moto_table: Settings, client_hooks: ClientHooks, code: str, reasons: tuple[str, ...],
    error: type[DataLayerError],
) -> None:
    client_hooks.fail(User, "TransactWriteItems", code, reasons=reasons)
    with pytest.raises(error) as raised:
        create_user(random_email(), "Ada")
    assert type(raised.value) is error
    assert isinstance(raised.value.__cause__, (TransactWriteError, ClientError))
    assert raw_scan(moto_table) == []


def test_update_and_find_map_an_unexpected_error_to_a_data_layer_error(
    moto_table: Settings, client_hooks: ClientHooks
) -> None:
    user_id, email = seed_user(moto_table)
    user = get_user(user_id)
    client_hooks.fail(User, "UpdateItem", "InternalServerError")
    client_hooks.fail(User, "Query", "InternalServerError")
    with pytest.raises(WriteOutcomeUnknown) as updating:  # the write may have been applied
        update_user(user, name="New")
    assert updating.value.keys == [(user.pk, user.sk)]
    with pytest.raises(DataLayerError) as finding:
        find_user_by_email(email)
    assert type(finding.value) is DataLayerError
    for raised in (updating, finding):
        assert isinstance(raised.value.__cause__, (PynamoDBException, ClientError))
