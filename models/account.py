"""Account: a balance, debited and credited only inside transactions."""

from __future__ import annotations

from pynamodb.attributes import UnicodeAttribute

from models.attributes import MoneyAttribute
from models.keys import EntityKeys
from models.table import TableModel


class Account(TableModel, discriminator="ACCOUNT"):
    """``ACCOUNT#{account_id}`` / ``BALANCE``."""

    keys = EntityKeys(pk="ACCOUNT#{account_id}", sk="BALANCE")

    account_id = UnicodeAttribute(attr_name="AccountId")
    balance = MoneyAttribute(attr_name="Balance")
