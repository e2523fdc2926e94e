"""Transfer: the record of money moved between two accounts, written once."""

from __future__ import annotations

from pynamodb.attributes import UnicodeAttribute

from models.account import Account
from models.attributes import MoneyAttribute
from models.keys import EntityKeys
from models.rules import Moves
from models.table import TableModel


class Transfer(TableModel, discriminator="TRANSFER"):
    """``TRANSACTION#{transfer_id}`` / ``TRANSFER``.

    Rules: saving it moves ``amount`` from ``from_account`` to ``to_account`` in the same
    transaction (``Moves``: the debit only while the balance covers it); written once.
    """

    keys = EntityKeys(pk="TRANSACTION#{transfer_id}", sk="TRANSFER")

    transfer_id = UnicodeAttribute(attr_name="TransferId")
    from_account = UnicodeAttribute(attr_name="FromAccount")
    to_account = UnicodeAttribute(attr_name="ToAccount")
    amount = MoneyAttribute(attr_name="Amount", positive=True)
    idempotency_key = UnicodeAttribute(attr_name="IdempotencyKey", null=True)

    rules = (Moves(Account, balance="balance", source="from_account", target="to_account", amount="amount",
                   instead="Transfer.save() (repositories.accounts.transfer_funds)"),)
