"""Key templates: declared once per entity, they both compose and parse keys.

``KeyTemplate("USER#{user_id}")`` composes ``USER#42`` from ``{"user_id": "42"}`` and parses it
back. Every part is checked before any request: an empty part, a part holding the delimiter
``#`` (which would let one user address another entity's partition) or a key longer than
DynamoDB allows raises ``InvalidKey``.
"""

from __future__ import annotations

import enum
import functools
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from core.errors import InvalidKey

DELIMITER = "#"
# DynamoDB's limits, in UTF-8 bytes: 2048 for a partition key, 1024 for a sort key.
MAX_PARTITION_KEY_BYTES = 2048
MAX_SORT_KEY_BYTES = 1024
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_part(value: Any) -> str:
    """Render one key part: enums by value, datetimes as sortable UTC ISO-8601."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidKey("a datetime in a key must be timezone-aware")
        return value.astimezone(UTC).strftime(TIMESTAMP_FORMAT)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidKey(f"a key part must be a string, got {type(value).__name__}")
    return str(value)


@dataclass(frozen=True)
class KeyTemplate:
    """A key pattern such as ``DEVICE#{device_id}#{day}``: literals and named fields."""

    pattern: str
    max_bytes: int = MAX_PARTITION_KEY_BYTES
    fields: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _literals: tuple[str, ...] = field(init=False, repr=False, compare=False)  # around the fields

    def __post_init__(self) -> None:
        names: list[str] = []
        literals: list[str] = []
        regex = ""
        pending = ""  # the literal text since the last field
        for literal, name, spec, conversion in string.Formatter().parse(self.pattern):
            pending += literal
            regex += re.escape(literal)
            if name is None:
                continue
            if not name.isidentifier() or spec or conversion:
                raise ValueError(f"bad field {name!r} in key template {self.pattern!r}")
            if name in names:
                raise ValueError(f"field {name!r} appears twice in key template {self.pattern!r}")
            names.append(name)
            literals.append(pending)
            pending = ""
            regex += f"(?P<{name}>[^{DELIMITER}]+)"
        literals.append(pending)
        object.__setattr__(self, "fields", tuple(names))
        object.__setattr__(self, "_regex", re.compile(regex + r"\Z"))
        object.__setattr__(self, "_literals", tuple(literals))

    def compose(self, **values: Any) -> str:
        """Build the key from its parts; raise ``InvalidKey`` on a bad part."""
        return self.compose_from(values)

    def compose_from(self, values: Mapping[str, Any]) -> str:
        """``compose`` of the parts in ``values`` (a mapping that may hold other names too)."""
        return self.composer(*map(values.get, self.fields))

    @functools.cached_property
    def composer(self) -> Callable[..., str]:
        """The template as a function of its parts, in the order of ``fields`` (compiled at first
        use, once a template: ``compose`` unrolled for this pattern). Each part is checked
        in turn (a plain non-empty string without the delimiter as is, anything else through
        ``compose_part``; a missing one is ``InvalidKey``), placed between the pattern's literals as
        ``str.format`` would place it, and the key measured (UTF-8 takes at most 4 bytes a
        character: only a long key is encoded to be measured)."""
        parts = [f"part_{n}" for n in range(len(self.fields))]
        lines = [f"def compose({''.join(f'{part}, ' for part in parts)}):"]
        for name, part in zip(self.fields, parts, strict=True):
            lines += [f"    if type({part}) is not str or not {part} or {DELIMITER!r} in {part}:",
                      f"        {part} = checked({name!r}, {part})"]
        pieces = [repr(self._literals[0])]
        for part, literal in zip(parts, self._literals[1:], strict=True):
            pieces += [part, repr(literal)]
        key = " + ".join(piece for piece in pieces if piece != repr("")) or repr("")
        lines += [f"    key = {key}",
                  f"    if len(key) > {self.max_bytes // 4} and len(key.encode('utf-8')) > {self.max_bytes}:",
                  "        raise too_long()",
                  "    return key"]
        scope: dict[str, Any] = {"checked": self._checked_part, "too_long": self._too_long}
        composer: Callable[..., str] = compiled(lines, "compose", f"<key {self.pattern!r}>", scope)
        return composer

    def _checked_part(self, name: str, value: Any) -> str:
        if value is None:
            raise InvalidKey(f"key part {name!r} is missing")
        return self.compose_part(name, value)

    def _too_long(self) -> InvalidKey:
        return InvalidKey(f"key {self.pattern!r} would exceed DynamoDB's {self.max_bytes}-byte limit")

    def parse(self, key: str) -> dict[str, str]:
        """Split a stored key back into its parts; raise ``InvalidKey`` if it does not match."""
        match = self._regex.match(key)
        if match is None:
            raise InvalidKey(f"key does not match template {self.pattern!r}")
        return match.groupdict()

    def prefix(self, **values: Any) -> str:
        """The literal start of the key up to the first field not given (for begins_with)."""
        out = ""
        for literal, name, _, _ in string.Formatter().parse(self.pattern):
            out += literal
            if name is None:
                continue
            if name not in values:
                return out
            out += self.compose_part(name, values[name])
        return out

    @staticmethod
    def compose_part(name: str, value: Any) -> str:
        """Validate and render a single field's value."""
        part = format_part(value)
        if not part:
            raise InvalidKey(f"key part {name!r} is empty")
        if DELIMITER in part:
            raise InvalidKey(f"key part {name!r} contains the delimiter {DELIMITER!r}")
        return part


def compiled(lines: list[str], name: str, where: str, scope: dict[str, Any]) -> Any:
    """The function ``name`` that ``lines`` define, run in ``scope`` (source the layer generates
    from declarations: names in it are identifiers, texts ``repr()`` strings); ``where`` names it
    in tracebacks. Key templates, and an entity's keys and item (``models.writing``), compile so."""
    exec(compile("\n".join(lines), where, "exec"), scope)  # noqa: S102 - see the docstring
    return scope[name]


class EntityKeys:
    """The key templates of one entity: ``pk`` and ``sk`` for the table, and one template per index
    key the entity fills in, named by the Python attribute that holds it (``gsi1pk=...``,
    ``gsi2pk=...``; any number of indexes).

    Table keys must be complete on every write. An index key whose parts are not all set is left
    out of the item, so a sparse index holds only the entities that have every part.
    """

    def __init__(self, pk: str, sk: str, **index_keys: str) -> None:
        self.pk = pk
        self.sk = sk
        self.index_keys = dict(index_keys)

    def __repr__(self) -> str:
        extra = "".join(f", {name}={pattern!r}" for name, pattern in self.index_keys.items())
        return f"EntityKeys(pk={self.pk!r}, sk={self.sk!r}{extra})"

    def templates(self) -> dict[str, KeyTemplate]:
        """Python attribute name -> template, for every key this entity fills in."""
        out = {
            "pk": KeyTemplate(self.pk, MAX_PARTITION_KEY_BYTES),
            "sk": KeyTemplate(self.sk, MAX_SORT_KEY_BYTES),
        }
        for name, pattern in self.index_keys.items():
            out[name] = KeyTemplate(pattern, MAX_PARTITION_KEY_BYTES)
        return out
