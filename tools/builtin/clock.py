"""``current_time``: the date and time now, in a given time zone (checkpointed like any tool
result, so a replay sees the time of the first call)."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from ..errors import ToolError
from ..tool import tool


@tool
def current_time(timezone: str = "UTC") -> str:
    """The current date and time as ISO 8601 text, with the weekday.

    Args:
        timezone: an IANA time zone name such as "Europe/Paris" or "America/New_York".
    """
    try:
        zone = dt.UTC if timezone.upper() == "UTC" else zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ToolError(f"unknown time zone {timezone!r}; use an IANA name such as 'Europe/Paris'") from None
    now = dt.datetime.now(zone)
    return f"{now.isoformat(timespec='seconds')} ({now.strftime('%A')}, {timezone})"
