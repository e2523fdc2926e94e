"""Users: create, read, update and delete; what ``User`` declares is kept by its own writes.

``User`` declares a unique email in its canonical form (``core.emails``; an ``EmailClaim`` put,
moved and freed in the same transaction as the user) and that deleting a user retires its id. The
write path (``models.planning``) keeps both on every path, so these functions validate their input
and say which write they mean. Updates and deletes are optimistic: they hold only if the ``User``
passed in is still the stored version and its email the stored email, else ``ConflictError``.
``get_user`` reads through ``repositories.cache`` (off unless configured) with a strongly consistent
loader; every write here invalidates the user's entry.

``create_user(..., idempotency_key=)``: the same key with the same arguments returns the first
user and writes nothing (also after ``WriteOutcomeUnknown``), other arguments raise
``IdempotencyKeyReused``; the key is scoped to ``create_user``, remembered for 7 days
(``models.idempotency``), and without ``user_id`` the id is derived from it.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from pynamodb.expressions.update import Action

from core.errors import InvalidInput
from models import idempotency, planning
from models.attributes import normalize_email
from models.idempotency import IdempotencyKey
from models.order import Order
from models.user import MAX_NAME_LENGTH, User
from repositories import cache, query
from repositories._common import key_part, require_text
from repositories.paging import Page

__all__ = ["create_user", "delete_user", "find_user_by_email", "get_user", "get_user_with_orders",
           "normalize_email", "update_user"]


def create_user(email: str, name: str, *, user_id: str | None = None,
                idempotency_key: str | None = None) -> User:
    """Create a user and claim its email in one transaction.

    ``AlreadyExists`` if the email is taken, or the id is in use or belonged to a deleted user.
    ``idempotency_key`` (scoped to this function, kept 7 days): called again with the same key and
    the same arguments, the first call's user is returned and nothing is written, also when the
    first call ended in ``WriteOutcomeUnknown``; with other arguments, ``IdempotencyKeyReused``.
    Without ``user_id`` the id is derived from the key (a new uuid4 without a key).
    """
    email = normalize_email(email)
    name = require_text(name, "name", max_length=MAX_NAME_LENGTH)
    given = None if user_id is None else key_part(user_id, "user_id")
    key = IdempotencyKey.of("create_user", idempotency_key, owner=None,
                            arguments={"email": email, "name": name, "user_id": given})
    user_id = given or (key.derived_id().hex if key is not None else uuid.uuid4().hex)
    user = User(user_id=user_id, email=email, name=name)
    try:
        first = idempotency.execute(lambda: planning.plan_put(user), key, User, what="User.save")
    finally:
        cache.invalidate(_cache_key(user_id))
    return user if first is None else first


def get_user(user_id: str) -> User:
    """The user with this id; ``NotFound`` if there is none. Reads through the cache when it is on."""
    user_id = key_part(user_id, "user_id")
    # Strongly consistent: what the loader returns may be cached for a whole TTL.
    user = cache.read_through(_cache_key(user_id), lambda: query.get_one(User, user_id=user_id))
    return copy.deepcopy(user)


def get_user_with_orders(user_id: str, *, limit: int = 20,
                         cursor: str | None = None) -> tuple[User, Page[Order]]:
    """The user and one page of its orders, newest first, in one query (``Order.with_user``).

    ``cursor``: the page's ``next_cursor`` continues the orders (it is also a cursor of
    ``orders.get_user_orders(user_id)``); the user is then read by its key. ``NotFound`` if there is
    no such user. Not read through the cache: the profile and the orders are read together.
    """
    user_id = key_part(user_id, "user_id")
    return Order.with_user.page(user_id=user_id, limit=limit, cursor=cursor)


def find_user_by_email(email: str) -> User | None:
    """The user with this email (any case), through Email-Index (``User.with_email``); ``None`` if
    there is none.

    The index is eventually consistent: a user created or changed a moment ago may not be seen yet.
    """
    return User.with_email.first(email=normalize_email(email))


def update_user(user: User, *, name: str | None = None, email: str | None = None) -> User:
    """Change the name and/or email of ``user``; return the updated user (``user`` is left as it was).

    ``ConflictError`` if the stored user is no longer the version of ``user`` (or was deleted),
    or if its stored email is not the one ``user`` was read with; ``AlreadyExists`` if the new
    email belongs to someone else. A new email moves the claim in the same transaction.
    """
    _check_stored_user(user)
    if name is None and email is None:
        raise InvalidInput("nothing to update: give a name, an email or both")
    actions: list[Action] = []
    if name is not None:
        actions.append(User.name.set(require_text(name, "name", max_length=MAX_NAME_LENGTH)))
    if email is not None:
        actions.append(User.email.set(normalize_email(email)))
    updated = copy.deepcopy(user)
    try:
        updated.update(actions)
    finally:
        cache.invalidate(_cache_key(user.user_id))
    return updated


def delete_user(user: User) -> None:
    """Delete ``user``, free its email and retire its id, in one transaction.

    ``ConflictError`` if ``user`` is stale, or if its email is not the stored one. The user's
    orders stay (as records) and no later user can take the id over.
    """
    _check_stored_user(user)
    try:
        copy.deepcopy(user).delete()
    finally:
        cache.invalidate(_cache_key(user.user_id))


def _check_stored_user(user: Any) -> None:
    if not isinstance(user, User):
        raise InvalidInput(f"expected a User, got {type(user).__name__}")
    key_part(user.user_id, "user_id")
    if user.version is None:
        raise InvalidInput("this User was never stored (it has no version): use create_user")
    if not isinstance(user.email, str):
        raise InvalidInput("this User has no email")


def _cache_key(user_id: str) -> tuple[str, ...]:
    return ("user", user_id)
