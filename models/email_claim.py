"""Email claim: makes an email unique, written in the same transaction as its user."""

from __future__ import annotations

from pynamodb.attributes import UnicodeAttribute

from models.keys import EntityKeys
from models.rules import WrittenBy
from models.table import TableModel


class EmailClaim(TableModel, discriminator="EMAIL"):
    """``EMAIL#{email}`` / ``EMAIL``, owned by ``user_id``.

    The email is kept under ``ClaimedEmail``, not ``Email``, so claims stay out of the sparse
    Email-Index, which holds users only. Claims are written only by their user's writes
    (``User``'s ``Unique("email")`` rule).
    """

    keys = EntityKeys(pk="EMAIL#{email}", sk="EMAIL")

    email = UnicodeAttribute(attr_name="ClaimedEmail")
    user_id = UnicodeAttribute(attr_name="UserId")

    rules = (WrittenBy("the writes of its User (create_user, update_user, delete_user, User.save())"),)
