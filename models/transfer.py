"""Transfer: the record of money moved between two accounts, written once."""

from __future__ import annotations

from pynamodb.attributes import UnicodeAttribute

from models.attributes import MoneyAttribute
from models.keys import EntityKeys
from models.rules import WrittenBy
from models.table import TableModel


class Transfer(TableModel, discriminator="TRANSFER"):
    """``TRANSACTION#{transfer_id}`` / ``TRANSFER``.

    Rules: written once, by ``transfer_funds``, in the same transaction as the two balances.
    """

    keys = EntityKeys(pk="TRANSACTION#{transfer_id}", sk="TRANSFER")

    transfer_id = UnicodeAttribute(attr_name="TransferId")
    from_account = UnicodeAttribute(attr_name="FromAccount")
    to_account = UnicodeAttribute(attr_name="ToAccount")
    amount = MoneyAttribute(attr_name="Amount", positive=True)
    idempotency_key = UnicodeAttribute(attr_name="IdempotencyKey", null=True)

    rules = (WrittenBy("repositories.accounts.transfer_funds"),)
