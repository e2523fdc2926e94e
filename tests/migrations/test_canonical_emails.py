"""Revision 0005 moves stored emails to their canonical form: claims follow, collisions and
refused addresses are reported and left alone, and running it again changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from core.config import Settings
from migrations import runner
from migrations.runner import RevisionFailed
from tests.migrations.helpers import claim_item, get_raw, quiet, scan_all, seed, user_item

REVISION = "0005"
BEFORE = "0004"



def _user(user_id: str, email: str) -> dict[str, Any]:
    return user_item(user_id, email, Name={"S": "A user"})


def _claims(client: Any, table: str) -> dict[str, str]:
    """Every claim: its address -> its owner."""
    return {
        item["ClaimedEmail"]["S"]: item["UserId"]["S"]
        for item in scan_all(client, table)
        if item["EntityType"]["S"] == "EMAIL"
    }


def _emails(client: Any, table: str) -> dict[str, tuple[str, str]]:
    """Every user: its id -> (Email, Version)."""
    return {
        item["UserId"]["S"]: (item["Email"]["S"], item["Version"]["N"])
        for item in scan_all(client, table)
        if item["EntityType"]["S"] == "USER"
    }


# What revision 0004 left: lower-cased, each claimed by its user under that spelling.
STORED = {
    "u1": "\uff41lice@example.com",  # fullwidth a
    "u2": "stra\u00dfe@example.com",
    "u3": "carol@xn--mnchen-3ya.de",
    "u4": "i\u0307lker@example.com",  # what "İlker".lower() gives
    "u5": "e\u0301rin@example.com",  # NFD
    "u6": "frank@example.com",  # canonical already
}
CANONICAL = {
    "u1": "alice@example.com",
    "u2": "strasse@example.com",
    "u3": "carol@m\u00fcnchen.de",
    "u4": "ilker@example.com",
    "u5": "\u00e9rin@example.com",
    "u6": "frank@example.com",
}


def _seed_stored(client: Any, table: str) -> None:
    items = [item for uid, email in STORED.items() for item in (_user(uid, email), claim_item(email, uid))]
    seed(client, table, items)


def test_stored_emails_move_to_their_canonical_form_with_their_claims(local: Settings, client: Any) -> None:
    runner.upgrade(BEFORE, out=quiet, client=client)
    table = local.table_name
    _seed_stored(client, table)
    seed(
        client,
        table,
        [
            {
                "PK": {"S": "USER#u1"},
                "SK": {"S": "ORDER#1"},
                "EntityType": {"S": "ORDER"},
                "Email": {"S": "\uff41lice@example.com"},
            }
        ],
    )  # not a user: left alone

    assert runner.upgrade(REVISION, out=quiet, client=client) == [REVISION]

    assert _emails(client, table) == {
        uid: (email, "1" if STORED[uid] == email else "2") for uid, email in CANONICAL.items()
    }
    assert _claims(client, table) == {email: uid for uid, email in CANONICAL.items()}  # old claims gone
    alice = get_raw(client, table, "USER#u1", "PROFILE")
    assert alice is not None and alice["UpdatedAt"]["S"] > "2026"
    assert get_raw(client, table, "USER#u1", "ORDER#1")["Email"] == {"S": "\uff41lice@example.com"}  # type: ignore[index]

    before = scan_all(client, table)
    assert runner.downgrade(BEFORE, out=quiet, client=client) == [REVISION]  # only a note
    assert runner.upgrade(REVISION, out=quiet, client=client) == [REVISION]  # a fresh backfill run
    assert sorted(scan_all(client, table), key=str) == sorted(before, key=str)  # nothing changed


def test_a_collision_or_a_refused_address_fails_the_item_without_overwriting_and_a_rerun_changes_nothing(
    local: Settings, client: Any
) -> None:
    runner.upgrade(BEFORE, out=quiet, client=client)
    table = local.table_name
    _seed_stored(client, table)
    seed(client, table, [
        _user("u7", "\uff47ina@example.com"), claim_item("\uff47ina@example.com", "u7"),  # fullwidth g
        _user("u8", "gina@example.com"), claim_item("gina@example.com", "u8"),  # its canonical form: taken
        _user("u9", "p\u0430ypal@example.com"), claim_item("p\u0430ypal@example.com", "u9"),  # mixed scripts
    ])  # fmt: skip
    lines: list[str] = []

    with pytest.raises(RevisionFailed, match="2 item"):
        runner.upgrade(REVISION, out=lines.append, client=client)

    failures = [line for line in lines if "failed: " in line]
    assert any('"USER#u7"' in line and "claimed by another user" in line for line in failures), lines
    assert any('"USER#u9"' in line and "mixes letters of different scripts" in line for line in failures)
    assert not any(word in line for line in failures for word in ("gina", "ypal", "example")), failures
    emails = _emails(client, table)
    assert emails["u7"] == ("\uff47ina@example.com", "1") and emails["u8"] == ("gina@example.com", "1")
    assert emails["u9"] == ("p\u0430ypal@example.com", "1")
    claims = _claims(client, table)
    assert claims["gina@example.com"] == "u8" and claims["\uff47ina@example.com"] == "u7"  # not overwritten
    assert {uid: emails[uid][0] for uid in CANONICAL} == CANONICAL  # the others went through

    before = sorted(scan_all(client, table), key=str)
    with pytest.raises(RevisionFailed, match="2 item"):
        runner.upgrade(REVISION, out=quiet, client=client)  # resumes; retries only the failed items
    assert sorted(scan_all(client, table), key=str) == before

    # Resolved by hand: the impostor spelling's owner gives the address up, the other user goes.
    client.delete_item(TableName=table, Key={"PK": {"S": "EMAIL#gina@example.com"}, "SK": {"S": "EMAIL"}})
    client.delete_item(TableName=table, Key={"PK": {"S": "USER#u8"}, "SK": {"S": "PROFILE"}})
    client.delete_item(TableName=table, Key={"PK": {"S": "USER#u9"}, "SK": {"S": "PROFILE"}})
    assert runner.upgrade(REVISION, out=quiet, client=client) == [REVISION]
    assert _emails(client, table)["u7"] == ("gina@example.com", "2")
    assert _claims(client, table)["gina@example.com"] == "u7"
    assert "\uff47ina@example.com" not in _claims(client, table)
