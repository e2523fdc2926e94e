"""The 400 KB item limit, checked before anything is sent: exact at the edge, whatever the shortcut."""

from __future__ import annotations

import pytest

from core.errors import InvalidInput
from models.item_size import MAX_ITEM_BYTES, check_item_size, item_size


def _item(text: str) -> dict[str, dict[str, str]]:
    return {"PK": {"S": "p"}, "SK": {"S": "s"}, "Amount": {"N": "12.5"}, "Body": {"S": text}}


def _fill(char: str, target: int) -> str:
    """Mostly ``char``, so that ``_item`` of it is exactly ``target`` bytes."""
    room = target - item_size(_item(""))
    width = len(char.encode("utf-8"))
    text = char * (room // width) + "a" * (room % width)
    assert item_size(_item(text)) == target
    return text


@pytest.mark.parametrize("char", ["a", "é", "€", "😀"])
def test_an_item_of_exactly_the_limit_passes_and_one_byte_more_is_refused(char: str) -> None:
    check_item_size(_item(_fill(char, MAX_ITEM_BYTES)), "put")
    over = _item(_fill(char, MAX_ITEM_BYTES + 1))
    with pytest.raises(InvalidInput, match="item limit"):
        check_item_size(over, "put")


def test_multi_byte_text_counts_its_utf8_bytes_not_its_characters() -> None:
    # 110,000 four-byte characters are 440,000 bytes: over, though far fewer characters than bytes.
    with pytest.raises(InvalidInput):
        check_item_size(_item("😀" * 110_000), "put")
    check_item_size(_item("😀" * 100_000), "put")  # 400,000 bytes and a little overhead: under


def test_nested_and_binary_items_are_measured_exactly() -> None:
    nested = {"PK": {"S": "p"}, "M": {"M": {"k": {"B": b"x" * (MAX_ITEM_BYTES - 20)}}}}
    check_item_size(nested, "put")
    with pytest.raises(InvalidInput):
        check_item_size({"PK": {"S": "p"}, "B": {"B": b"x" * MAX_ITEM_BYTES}}, "put")
