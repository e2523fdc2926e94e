"""User: a profile item in the user's partition, found by email through Email-Index."""

from __future__ import annotations

from pynamodb.attributes import UnicodeAttribute

from models.keys import EntityKeys
from models.table import EmailIndex, TableModel


class User(TableModel, discriminator="USER"):
    """A user's profile (``USER#{user_id}`` / ``PROFILE``); ``Email`` is stored lower-cased."""

    keys = EntityKeys(pk="USER#{user_id}", sk="PROFILE")

    user_id = UnicodeAttribute(attr_name="UserId")
    email = UnicodeAttribute(attr_name="Email")
    name = UnicodeAttribute(attr_name="Name")

    by_email: EmailIndex[User] = EmailIndex()
