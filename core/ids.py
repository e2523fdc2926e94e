"""Random version-4 UUIDs in one step: what ``uuid.uuid4()`` gives, without building a ``UUID``.

Every write makes one (its write token), and ``batch_write`` one an item; ``uuid.uuid4()`` builds a
``UUID`` object through its checking constructor for each. These functions take the same 16 random
bytes from ``os.urandom`` (``uuid4_hexes``: those of many ids in one call) and set the same version
and variant bits.
"""

from __future__ import annotations

import os
from typing import Final

_VERSION_MASK: Final = ~((0xF000 << 64) | (0xC000 << 48))
_VERSION_4: Final = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122 variant


def uuid4_hex() -> str:
    """``uuid.uuid4().hex``: 32 lower-case hex digits."""
    return _as_uuid4(os.urandom(16))


def uuid4_hexes(count: int) -> list[str]:
    """``count`` of ``uuid4_hex()``, their random bytes read from ``os.urandom`` in one call."""
    data = os.urandom(16 * count)
    return [_as_uuid4(data[at : at + 16]) for at in range(0, 16 * count, 16)]


def _as_uuid4(random: bytes) -> str:
    """16 random bytes as a version-4 UUID's hex digits (its version and variant bits set)."""
    return f"{int.from_bytes(random) & _VERSION_MASK | _VERSION_4:032x}"


def uuid4_text() -> str:
    """``str(uuid.uuid4())``: the 36-character form with hyphens."""
    digits = uuid4_hex()
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
