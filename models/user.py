"""User: a profile item in the user's partition, found by email through Email-Index."""

from __future__ import annotations

from pynamodb.attributes import UnicodeAttribute

from core.budgets import Budget
from models.attributes import EmailAttribute, TextAttribute
from models.email_claim import EmailClaim
from models.indexes import GlobalIndex
from models.keys import EntityKeys
from models.queries import Query
from models.rules import RetiredOnDelete, Unique, WrittenBy
from models.table import TableModel

MAX_NAME_LENGTH = 256


class RetiredUserId(TableModel, discriminator="USER_RETIRED"):
    """``USER#{user_id}`` / ``RETIRED``: the id belonged to a deleted user and is never reused."""

    keys = EntityKeys(pk="USER#{user_id}", sk="RETIRED")

    user_id = UnicodeAttribute(attr_name="UserId")

    rules = (WrittenBy("User.delete() (repositories.users.delete_user)"),)


class User(TableModel, discriminator="USER"):
    """A user's profile (``USER#{user_id}`` / ``PROFILE``).

    Rules: the email is stored in its canonical form (``core.emails``) and is unique (an
    ``EmailClaim`` moves with it in the same transaction); deleting a user retires its id
    (``RetiredUserId``), so a later user can never take the id over, nor the orders still filed
    under it.
    """

    keys = EntityKeys(pk="USER#{user_id}", sk="PROFILE")

    user_id = UnicodeAttribute(attr_name="UserId")
    email = EmailAttribute(attr_name="Email")
    name = TextAttribute(attr_name="Name", max_length=MAX_NAME_LENGTH, strip=True)

    # every user is in Email-Index under its (canonical) email
    by_email = GlobalIndex("Email-Index", pk="email")

    # the user who has an email: one item, one request
    with_email = Query(by_email, budget=Budget(max_read_units_per_page=1, max_items_read_per_item_returned=1,
                                               max_requests_per_page=1))

    rules = (Unique("email", claim=EmailClaim), RetiredOnDelete(RetiredUserId))
