"""The low-level botocore client, for what PynamoDB cannot do (index changes, raw reads).

Same endpoint, region, retry policy and logging as the PynamoDB models: botocore's ``standard``
retry mode retries throttling and 5xx errors with exponential backoff and full jitter.
"""

from __future__ import annotations

from typing import Any

import botocore.config
import botocore.session

from core.config import Settings, get_settings
from core.logs import instrument


def retry_config(settings: Settings) -> dict[str, Any]:
    """botocore's retry configuration, shared by every client of the data layer."""
    return {"mode": "standard", "total_max_attempts": 1 + settings.max_retry_attempts}


def new_client(settings: Settings | None = None) -> Any:
    """Create an instrumented botocore DynamoDB client for the current settings."""
    settings = settings or get_settings()
    config = botocore.config.Config(
        connect_timeout=settings.connect_timeout_seconds,
        read_timeout=settings.read_timeout_seconds,
        retries=retry_config(settings),  # type: ignore[arg-type]
    )
    session = botocore.session.get_session()
    client = session.create_client(
        "dynamodb", region_name=settings.region, endpoint_url=settings.endpoint_url, config=config
    )
    return instrument(client)
