"""Random ids in one step are uuid4's: version 4, RFC 4122 variant, 122 random bits, the same text."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from core.ids import uuid4_hex, uuid4_hexes, uuid4_text


@pytest.mark.parametrize("make", [lambda: [uuid4_hex() for _ in range(2000)], lambda: uuid4_hexes(2000)])
def test_a_hex_id_is_a_version_4_uuid_spelled_as_uuid_spells_it(make: Callable[[], list[str]]) -> None:
    made = make()
    assert len(made) == 2000
    for digits in made:
        parsed = uuid.UUID(hex=digits)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, uuid.RFC_4122, digits)
    assert len(set(made)) == len(made)
    # every one of the 122 random bits takes both values across the ids
    fixed = uuid.UUID(int=(0xF000 << 64) | (0xC000 << 48)).int
    ones = 0
    zeros = 0
    for digits in made:
        ones |= int(digits, 16)
        zeros |= ~int(digits, 16) & ((1 << 128) - 1)
    assert ones & zeros == ((1 << 128) - 1) & ~fixed


def test_a_text_id_is_the_hyphenated_form_of_a_version_4_uuid() -> None:
    for _ in range(500):
        text = uuid4_text()
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
