"""Account: a balance, debited and credited only inside transfers."""

from __future__ import annotations

from pynamodb.attributes import UnicodeAttribute

from models.attributes import MoneyAttribute
from models.keys import EntityKeys
from models.rules import WrittenBy
from models.table import TableModel


class Account(TableModel, discriminator="ACCOUNT"):
    """``ACCOUNT#{account_id}`` / ``BALANCE``.

    Rules: the balance is money, never negative; once the account exists it changes only through
    a ``Transfer``'s save (``transfer_funds``), so money is conserved; an account is never deleted.
    """

    keys = EntityKeys(pk="ACCOUNT#{account_id}", sk="BALANCE")

    account_id = UnicodeAttribute(attr_name="AccountId")
    balance = MoneyAttribute(attr_name="Balance")

    rules = (WrittenBy("Transfer.save() (repositories.accounts.transfer_funds)", attributes=("balance",)),)
