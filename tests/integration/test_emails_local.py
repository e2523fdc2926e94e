"""Look-alike emails on DynamoDB Local: two spellings of one address never make two users."""

from __future__ import annotations

import uuid

import pytest

from core.config import Settings
from core.errors import AlreadyExists, InvalidInput
from models import User
from repositories.users import create_user, find_user_by_email, get_user, update_user
from tests.helpers import raw_scan

# (first spelling, second spelling, whether both are accepted and meet in one canonical form; when
# they do not, the first is refused)
PAIRS = {
    "fullwidth": ("\uff41da@example.com", "ada@example.com", True),
    "nfd-vs-nfc": ("e\u0301mile@example.com", "\u00e9mile@example.com", True),
    "sharp-s": ("stra\u00dfe@example.com", "strasse@example.com", True),
    "zero-width-space": ("ada\u200blovelace@example.com", "adalovelace@example.com", False),
    "soft-hyphen": ("ada\u00adlovelace@example.com", "adalovelace@example.com", False),
    "idna": ("ada@m\u00fcnchen.de", "ada@xn--mnchen-3ya.de", True),
    "dotted-capital-i": ("\u0130lker@example.com", "ilker@example.com", True),
    "cyrillic-a": ("\u0430da@example.com", "ada@example.com", False),
}


def _users_and_claims(settings: Settings) -> tuple[list[str], list[str]]:
    """The ids of every USER item and the addresses of every EMAIL claim, read with a raw client."""
    items = raw_scan(settings)
    users = [i["UserId"]["S"] for i in items if i["EntityType"]["S"] == "USER"]
    claims = [i["ClaimedEmail"]["S"] for i in items if i["EntityType"]["S"] == "EMAIL"]
    return users, claims


@pytest.mark.parametrize("reverse", [False, True], ids=["as-listed", "reversed"])
@pytest.mark.parametrize(("first", "second", "one_form"), PAIRS.values(), ids=PAIRS.keys())
def test_two_spellings_of_one_address_make_one_user_and_one_claim(
    local_table: Settings, first: str, second: str, one_form: bool, reverse: bool
) -> None:
    a, b = (second, first) if reverse else (first, second)
    outcomes: list[User | Exception] = []
    for email, name in ((a, "A"), (b, "B")):
        try:
            outcomes.append(create_user(email, name))
        except (AlreadyExists, InvalidInput) as exc:
            outcomes.append(exc)

    created = [o for o in outcomes if isinstance(o, User)]
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(created) == 1 and len(refused) == 1, outcomes
    users, claims = _users_and_claims(local_table)
    assert users == [created[0].user_id]
    assert len(claims) == 1
    if one_form:
        assert isinstance(outcomes[0], User) and isinstance(outcomes[1], AlreadyExists)
        found = find_user_by_email(b)
        assert found is not None and found.user_id == outcomes[0].user_id
        assert claims == [found.email]
    else:
        assert isinstance(outcomes[1 if reverse else 0], InvalidInput)  # the look-alike spelling


def test_changing_an_email_to_a_look_alike_of_another_users_is_refused(local_table: Settings) -> None:
    taken = create_user("strasse@example.com", "First")
    other = create_user("other@example.com", "Second")

    with pytest.raises(AlreadyExists):
        update_user(other, email="STRA\u00dfE@\uff45xample.com")
    with pytest.raises(InvalidInput):
        update_user(other, email="str\u0430sse@example.com")  # a Cyrillic a among Latin letters

    assert get_user(other.user_id).email == "other@example.com"
    users, claims = _users_and_claims(local_table)
    assert sorted(users) == sorted([taken.user_id, other.user_id])
    assert sorted(claims) == ["other@example.com", "strasse@example.com"]


def test_a_user_saved_directly_with_a_look_alike_email_claims_the_canonical_form(
    local_table: Settings,
) -> None:
    first = User(user_id=uuid.uuid4().hex, email="\u0130lker@M\u00dcNCHEN.de", name="First")
    first.save()
    second = User(user_id=uuid.uuid4().hex, email="ilker@xn--mnchen-3ya.de", name="Second")

    with pytest.raises(AlreadyExists):
        second.save()

    users, claims = _users_and_claims(local_table)
    assert users == [first.user_id]
    assert claims == ["ilker@m\u00fcnchen.de"]
    found = find_user_by_email("ILKER@m\u00fcnchen.de")
    assert found is not None and found.user_id == first.user_id
