"""Is what a write reported true? An operation, the effect it has when it takes, and the judge.

Each operation declares, before it runs, the items its effect consists of (``effects``: key ->
what that item's change must look like). After the call the whole table is scanned again and the
change compared with what the caller was told:

- success: the table changed by exactly the effect (nothing missing, nothing twice, nothing else);
- an error that says nothing was written (``InvalidInput``, ``AlreadyExists``, ``ConflictError``,
  ``NotFound``, ``InsufficientFunds``, ``RetriesExhausted``, or any other ``DataLayerError`` that
  does not say the outcome is unknown): the table did not change;
- ``WriteOutcomeUnknown``: either, provided its ``keys`` (and a batch's ``written``) name every
  changed item; for a batch, ``written`` must have landed and ``not_written`` not;
- anything that is not a ``DataLayerError``: false, whatever the table holds (phase 1 counts it as a
  raw exception).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from core.errors import DataLayerError, RetriesExhausted, WriteOutcomeUnknown
from models import TableModel
from tests.reliability.table import Diff, Item, Key, Snapshot, number, version

Pred = Callable[[Item | None, Item | None], bool]
Effects = dict[Key, Pred]


@dataclass
class Op:
    """One call of a write function, and the items its effect consists of.

    ``effects`` gets the outcome (the result or the exception), for the ids only it knows (a
    generated transfer id). ``atomic=False`` (a batch) allows a part of the effect with an error
    that says which part. ``check_result`` compares the returned entity with the stored item.
    ``again`` rebuilds the same call, same ids, for a caller who retries after an unknown outcome.
    """

    function: str
    call: Callable[[], Any]
    effects: Callable[[object], Effects]
    atomic: bool = True
    check_result: Callable[[Any, Snapshot], str | None] | None = None
    again: Callable[[], Op | None] | None = None
    settle: Callable[[object], None] | None = None  # bookkeeping once the outcome is known
    requests: int = 1  # HTTP requests the call makes when nothing fails (where a fault can land)

    @staticmethod
    def entities(found: Iterable[Any]) -> set[Key]:
        """The keys of the entities a batch error lists."""
        return keys_of(found)


# --- what an item's change must look like ------------------------------------------------------------


def _has(item: Item, attrs: Mapping[str, Any]) -> bool:
    for name, want in attrs.items():
        got = item.get(name)
        if want is None:
            if got is not None:
                return False
        elif got is None:
            return False
        elif isinstance(want, str):
            if got != {"S": want}:
                return False
        elif "N" not in got or Decimal(got["N"]) != Decimal(want):
            return False
    return True


def created(**attrs: Any) -> Pred:
    """A new item, version 1, holding ``attrs``."""
    return lambda before, after: (
        before is None and after is not None and version(after) == 1 and _has(after, attrs)
    )


def bumped(**attrs: Any) -> Pred:
    """The item one version on, holding ``attrs``."""
    return lambda before, after: (
        before is not None
        and after is not None
        and version(after) == (version(before) or 0) + 1
        and _has(after, attrs)
    )


def upserted(**attrs: Any) -> Pred:
    """Created, or replaced one version on."""
    made, moved = created(**attrs), bumped(**attrs)
    return lambda before, after: made(before, after) or moved(before, after)


def deleted() -> Pred:
    """The item is gone."""
    return lambda before, after: before is not None and after is None


def balance_moved(delta: Decimal) -> Pred:
    """An account's balance moved by ``delta`` and its version by one."""

    def check(before: Item | None, after: Item | None) -> bool:
        if before is None or after is None or version(after) != (version(before) or 0) + 1:
            return False
        return number(after, "Balance") == (number(before, "Balance") or 0) + delta

    return check


def folded(value: Decimal) -> Pred:
    """An hourly aggregate with one more reading of ``value``: count, sum, min and max."""

    def check(before: Item | None, after: Item | None) -> bool:
        if after is None:
            return False
        count, total = number(before, "Count") or 0, number(before, "Sum") or Decimal(0)
        low, high = number(before, "Min"), number(before, "Max")
        return (
            number(after, "Count") == count + 1
            and number(after, "Sum") == total + value
            and number(after, "Min") == (value if low is None else min(low, value))
            and number(after, "Max") == (value if high is None else max(high, value))
            and version(after) == (version(before) or 0) + 1
        )

    return check


# --- the judge ---------------------------------------------------------------------------------------


def describe(changes: Diff) -> str:
    """The changed items, briefly: key, and created / deleted / version a -> b."""
    parts = []
    for key in sorted(changes)[:6]:
        before, after = changes[key]
        if before is None:
            what = f"created v{version(after)}"
        elif after is None:
            what = "deleted"
        else:
            what = f"changed v{version(before)}->v{version(after)}"
        parts.append(f"{key[0]}|{key[1]} {what}")
    more = f" (+{len(changes) - 6} more)" if len(changes) > 6 else ""
    return ", ".join(parts) + more if parts else "nothing"


def summarise(exc: BaseException) -> str:
    """``Type: message``, the types of its causes, and the innermost data-layer frames that raised it."""
    causes: list[str] = []
    seen = exc.__cause__ or exc.__context__
    while seen is not None and len(causes) < 3:
        causes.append(type(seen).__name__)
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if any(f"/{part}/" in f.filename for part in ("models", "repositories", "core", "migrations"))
    ]
    where = " <- ".join(
        f"{f.filename.rsplit('/', 2)[-2]}/{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}"
        for f in reversed(frames[-3:])
    )
    text = f"{type(exc).__name__}: {str(exc)[:140]}"
    if causes:
        text += f" (cause: {' <- '.join(causes)})"
    return text + (f" [at {where}]" if where else "")


def judge(op: Op, outcome: object, changes: Diff, after: Snapshot) -> str | None:
    """``None`` when the outcome told the truth about ``changes``; else why not."""
    changed = set(changes)
    effects = op.effects(outcome)

    def exactly(keys: set[Key]) -> str | None:
        wanted = {key: pred for key, pred in effects.items() if key in keys}
        if changed != set(wanted):
            missing, extra = set(wanted) - changed, changed - set(wanted)
            return (
                f"the table shows {describe(changes)}; "
                f"missing {sorted(missing)[:3]}, unexpected {sorted(extra)[:3]}"
            )
        wrong = [key for key, pred in wanted.items() if not pred(*changes[key])]
        return f"the effect at {wrong[:3]} is not the one asked for ({describe(changes)})" if wrong else None

    if not isinstance(outcome, BaseException):
        problem = exactly(set(effects))
        if problem is None and op.check_result is not None:
            problem = op.check_result(outcome, after)
        return None if problem is None else f"success reported, but {problem}"
    if not isinstance(outcome, DataLayerError):
        return f"raised a non-DataLayerError: {summarise(outcome)} (table: {describe(changes)})"
    if isinstance(outcome, WriteOutcomeUnknown):
        written = op.entities(outcome.written)
        named = {tuple(k) for k in outcome.keys} | written
        if not changed <= named:
            return (
                f"{type(outcome).__name__} names {len(named)} keys, but "
                f"{sorted(changed - named)[:3]} changed too ({describe(changes)})"
            )
        if not changed:
            return "WriteOutcomeUnknown.written lists entities that were not written" if written else None
        if op.atomic:
            problem = exactly(set(effects))
            return None if problem is None else f"{type(outcome).__name__}, and a partial effect: {problem}"
        not_written = op.entities(outcome.not_written)
        if not written <= changed or not_written & changed:
            return f"a batch's written/not_written lists disagree with the table ({describe(changes)})"
        problem = exactly(changed)
        return None if problem is None else f"{type(outcome).__name__}: {problem}"
    if isinstance(outcome, RetriesExhausted) and not op.atomic and outcome.unprocessed:
        left = op.entities(outcome.unprocessed)
        problem = exactly(set(effects) - left)
        return (
            None if problem is None else f"RetriesExhausted.unprocessed disagrees with the table: {problem}"
        )
    if changed:
        return f"{summarise(outcome)} says nothing was written, but the table shows {describe(changes)}"
    return None


def keys_of(entities: Iterable[Any]) -> set[Key]:
    """The ``(PK, SK)`` of entities (as a batch error lists them)."""
    found = set()
    for entity in entities:
        if isinstance(entity, TableModel) and entity.pk is not None and entity.sk is not None:
            found.add((entity.pk, entity.sk))
    return found


def transfer_effects(source: str, target: str, amount: Decimal, transfer_id: str | None) -> Effects:
    """A transfer's effect: its record, the debit and the credit (none without an id)."""
    from models import Account, Transfer

    if transfer_id is None:
        return {}
    record, debit, credit = (
        model_key(Transfer, transfer_id=transfer_id),
        model_key(Account, account_id=source),
        model_key(Account, account_id=target),
    )
    return {
        record: created(FromAccount=source, ToAccount=target, Amount=amount),
        debit: balance_moved(-amount),
        credit: balance_moved(amount),
    }


def model_key(model: type[TableModel], **parts: Any) -> Key:
    """``(PK, SK)`` of a ``model`` item, composed by its declared templates."""
    pk, sk = model.key_template("pk"), model.key_template("sk")
    return (pk.compose(**{f: parts[f] for f in pk.fields}), sk.compose(**{f: parts[f] for f in sk.fields}))
