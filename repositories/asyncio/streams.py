"""``repositories.streams``: decoding a stream record sends nothing; the same functions for both APIs."""

from __future__ import annotations

from repositories.streams import decode_stream_record, is_ttl_expiry

__all__ = ["decode_stream_record", "is_ttl_expiry"]
