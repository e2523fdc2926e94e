"""Product: catalogue metadata, read singly or in batches."""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import MapAttribute, UnicodeAttribute

from models.attributes import MoneyAttribute, TextAttribute
from models.keys import EntityKeys
from models.table import TableModel


class Product(TableModel, discriminator="PRODUCT"):
    """``PRODUCT#{product_id}`` / ``METADATA#{product_id}``; free-form extras in ``Attributes``.

    Rules: the name is single-line text; the price is money (never negative, two decimal places).
    """

    keys = EntityKeys(pk="PRODUCT#{product_id}", sk="METADATA#{product_id}")

    product_id = UnicodeAttribute(attr_name="ProductId")
    name = TextAttribute(attr_name="Name", max_length=1024, strip=True)
    price = MoneyAttribute(attr_name="Price")
    # A raw MapAttribute, not DynamicMapAttribute: PynamoDB 6.1's DynamicMapAttribute reads back a
    # spurious "attribute_values" entry, which the next write would store. Same wire format.
    attributes = MapAttribute[str, Any](attr_name="Attributes", null=True)  # type: ignore[no-untyped-call]
