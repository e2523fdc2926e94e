"""Users: create, read, update and delete, with one email per user enforced by a claim item.

An email is unique through an ``EmailClaim`` (``EMAIL#{email}``) written in the same transaction
as its user: ``create_user`` puts both, ``update_user`` moves the claim when the email changes,
``delete_user`` frees it. Emails are stored lower-cased, so two spellings of one address collide.
Updates and deletes are optimistic: they hold only if the ``User`` passed in is still the stored
version and its email the stored email (the claim they move or free is that email's), else
``ConflictError``. ``get_user`` reads through ``repositories.cache`` (off unless configured) with
a strongly consistent loader; every write here invalidates the user's entry. Errors no access
pattern expects become ``RetriesExhausted`` (throttling) or ``DataLayerError``, cause kept.
"""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, PynamoDBException, TransactWriteError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from core.errors import AlreadyExists, ConflictError, InvalidInput, NotFound
from models.email_claim import EmailClaim
from models.table import utcnow
from models.user import User
from repositories import cache
from repositories._common import (
    CONDITION_FAILED,
    CONDITIONAL_CHECK_FAILED_EXCEPTION,
    TRANSACTION_CONFLICT,
    TRANSACTION_CONFLICT_EXCEPTION,
    cancellation_codes,
    error_code,
    key_part,
    raise_unexpected,
    require_text,
)

MAX_EMAIL_LENGTH = 254  # RFC 5321's limit on a forward path
MAX_LOCAL_PART_LENGTH = 64
MAX_NAME_LENGTH = 256
# A basic shape check, not RFC 5322: one "@", no whitespace, a dot in the domain.
_EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+\Z")
_STALE = "the user changed or was deleted since it was read (or its email was changed in memory)"


def create_user(email: str, name: str, *, user_id: str | None = None) -> User:
    """Create a user and claim its email in one transaction; ``AlreadyExists`` if either is taken."""
    email = normalize_email(email)
    name = require_text(name, "name", max_length=MAX_NAME_LENGTH)
    user_id = uuid.uuid4().hex if user_id is None else key_part(user_id, "user_id")
    user = User(user_id=user_id, email=email, name=name)
    claim = EmailClaim(email=email, user_id=user_id)
    try:
        with _transaction() as transaction:
            transaction.save(user, condition=User.pk.does_not_exist())
            transaction.save(claim, condition=EmailClaim.pk.does_not_exist())
    except TransactWriteError as exc:
        user_code, claim_code = _codes(exc, 2)
        if user_code == CONDITION_FAILED:
            raise AlreadyExists("a user with this id exists already") from exc
        if claim_code == CONDITION_FAILED:
            raise AlreadyExists("this email is taken") from exc
        _raise_if_conflict(exc)
        raise_unexpected(exc, "create_user")
    finally:
        cache.invalidate(_cache_key(user_id))
    return user


def get_user(user_id: str) -> User:
    """The user with this id; ``NotFound`` if there is none. Reads through the cache when it is on."""
    user_id = key_part(user_id, "user_id")
    return copy.deepcopy(cache.read_through(_cache_key(user_id), lambda: _load_user(user_id)))


def find_user_by_email(email: str) -> User | None:
    """The user with this email (any case), through Email-Index; ``None`` if there is none.

    The index is eventually consistent: a user created or changed a moment ago may not be seen yet.
    """
    email = normalize_email(email)
    try:
        for user in User.by_email.query(email, limit=1):
            return user
    except PynamoDBException as exc:
        raise_unexpected(exc, "find_user_by_email")
    return None


def update_user(user: User, *, name: str | None = None, email: str | None = None) -> User:
    """Change the name and/or email of ``user``; return the updated user (``user`` is left as it was).

    ``ConflictError`` if the stored user is no longer the version of ``user`` (or was deleted),
    or if its stored email is not ``user.email`` (changed in memory: the claim to move is the
    stored email's, and no claim may be left behind); ``AlreadyExists`` if the new email belongs
    to someone else. A new email moves the claim in the same transaction as the user.
    """
    current = _check_stored_user(user)
    if name is None and email is None:
        raise InvalidInput("nothing to update: give a name, an email or both")
    if name is not None:
        name = require_text(name, "name", max_length=MAX_NAME_LENGTH)
    if email is not None:
        email = normalize_email(email)
    updated = copy.deepcopy(user)
    now = utcnow()
    actions: list[Action] = [User.updated_at.set(now)]
    if name is not None:
        actions.append(User.name.set(name))
    try:
        if email is None or email == current.email:
            _update_in_place(updated, actions, stored_email=current.email)
        else:
            actions.append(User.email.set(email))
            _update_with_new_email(updated, actions, old_email=current.email, new_email=email)
            updated.email = email
            updated.updated_at = now
            if name is not None:
                updated.name = name
    finally:
        cache.invalidate(_cache_key(current.user_id))
    return updated


def delete_user(user: User) -> None:
    """Delete ``user`` and free its email in one transaction.

    ``ConflictError`` if ``user`` is stale, or if its email is not the stored one.
    """
    current = _check_stored_user(user)
    claim = EmailClaim(email=current.email, user_id=current.user_id)
    try:
        with _transaction() as transaction:
            # Conditioned on the version of `user` and on its stored email being the claim's.
            transaction.delete(user, condition=User.email == current.email)
            transaction.delete(claim, condition=_claim_is_free_or_owned_by(current.user_id),
                               add_version_condition=False)
    except TransactWriteError as exc:
        user_code, claim_code = _codes(exc, 2)
        if user_code == CONDITION_FAILED:
            raise ConflictError(_STALE) from exc
        if claim_code == CONDITION_FAILED:
            raise ConflictError("the user's email is claimed by another user") from exc
        _raise_if_conflict(exc)
        raise_unexpected(exc, "delete_user")
    finally:
        cache.invalidate(_cache_key(current.user_id))


def normalize_email(email: Any) -> str:
    """Lower-case and check an email (shape, length, usable in a key); ``InvalidInput`` if bad."""
    if not isinstance(email, str):
        raise InvalidInput(f"email must be a string, got {type(email).__name__}")
    text: str = email.strip().lower()
    if len(text) > MAX_EMAIL_LENGTH:
        raise InvalidInput(f"email is longer than {MAX_EMAIL_LENGTH} characters")
    if not _EMAIL_SHAPE.match(text) or len(text.partition("@")[0]) > MAX_LOCAL_PART_LENGTH:
        raise InvalidInput("email is not a valid address")
    EmailClaim.key_template("pk").compose(email=text)  # InvalidKey, e.g. for "#" in the address
    return text


def _check_stored_user(user: Any) -> User:
    if not isinstance(user, User):
        raise InvalidInput(f"expected a User, got {type(user).__name__}")
    key_part(user.user_id, "user_id")
    if user.version is None:
        raise InvalidInput("this User was never stored (it has no version): use create_user")
    if not isinstance(user.email, str):
        raise InvalidInput("this User has no email")
    return user


def _load_user(user_id: str) -> User:
    # Strongly consistent: what a loader returns may be cached for a whole TTL, so it must not be
    # an old replica's copy read just after a write invalidated the entry.
    try:
        return User.get(User.key_template("pk").compose(user_id=user_id), User.key_template("sk").compose(),
                        consistent_read=True)
    except DoesNotExist as exc:
        raise NotFound("no user with this id") from exc
    except PynamoDBException as exc:
        raise_unexpected(exc, "get_user")


def _update_in_place(updated: User, actions: list[Action], *, stored_email: str) -> None:
    try:
        # Conditioned on the version of `updated`, and on the email it believes is stored.
        updated.update(actions, condition=User.email == stored_email)
    except PynamoDBException as exc:
        if error_code(exc) == CONDITIONAL_CHECK_FAILED_EXCEPTION:
            raise ConflictError(_STALE) from exc
        raise_unexpected(exc, "update_user")


def _update_with_new_email(updated: User, actions: list[Action], *, old_email: str, new_email: str) -> None:
    old_claim = EmailClaim(email=old_email, user_id=updated.user_id)
    new_claim = EmailClaim(email=new_email, user_id=updated.user_id)
    try:
        # PynamoDB orders the items: deletes, puts, updates (the cancellation reasons follow).
        with _transaction() as transaction:
            transaction.delete(old_claim, condition=_claim_is_free_or_owned_by(updated.user_id),
                               add_version_condition=False)
            transaction.save(new_claim, condition=EmailClaim.pk.does_not_exist())
            # Conditioned on the version of `updated`, and on `old_email` being the stored email:
            # else the claim deleted above is not the user's and its real claim would stay behind.
            transaction.update(updated, actions, condition=User.email == old_email)
    except TransactWriteError as exc:
        old_code, new_code, user_code = _codes(exc, 3)
        if user_code == CONDITION_FAILED:
            raise ConflictError(_STALE) from exc
        if new_code == CONDITION_FAILED:
            raise AlreadyExists("this email is taken") from exc
        if old_code == CONDITION_FAILED:
            raise ConflictError("the user's old email is claimed by another user") from exc
        _raise_if_conflict(exc)
        raise_unexpected(exc, "update_user")


def _claim_is_free_or_owned_by(user_id: str) -> Any:
    # A missing claim (a user stored before claims existed) is not an error; another user's is.
    return (EmailClaim.user_id == user_id) | EmailClaim.pk.does_not_exist()


def _transaction() -> TransactWrite:
    connection: Connection = User._get_connection().connection
    return TransactWrite(connection=connection)


def _codes(exc: TransactWriteError, count: int) -> list[str | None]:
    codes = cancellation_codes(exc)
    return codes if len(codes) == count else [None] * count


def _raise_if_conflict(exc: TransactWriteError) -> None:
    if TRANSACTION_CONFLICT in cancellation_codes(exc) or error_code(exc) == TRANSACTION_CONFLICT_EXCEPTION:
        raise ConflictError("a concurrent transaction changed the same items") from exc


def _cache_key(user_id: str) -> tuple[str, ...]:
    return ("user", user_id)
