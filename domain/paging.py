"""Keyset pagination: a cursor names the last item of a page (its creation time and id), opaquely."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from domain.errors import InvalidInput

MAX_PAGE_SIZE = 100


def encode_cursor(created_at: datetime, item_id: str) -> str:
    raw = f"{created_at.isoformat()}|{item_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, item_id = raw.split("|", 1)
        created_at = datetime.fromisoformat(stamp)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("cursor is not one this service handed out") from None
    if created_at.tzinfo is None or not item_id:
        raise InvalidInput("cursor is not one this service handed out")
    return created_at, item_id
