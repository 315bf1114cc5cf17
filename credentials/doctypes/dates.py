"""Dates as documents carry them (ISO 8601) and as people read them (西暦 and 和暦).

Documents hold ``YYYY-MM-DD`` and RFC 3339 date-times only. Japanese readers expect the
era name next to the Gregorian date, so :func:`format_date` shows both.
"""

from __future__ import annotations

import re
from datetime import date, datetime

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# RFC 3339 §5.6 with an explicit offset; fractions beyond microseconds would be lost.
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)

# (first Gregorian day shown, Gregorian year of the era's 元年, ja, en), newest first.
# Meiji is shown from 1873-01-01 (明治6年), when Japan adopted the Gregorian calendar:
# earlier Meiji dates were lunisolar and do not map day for day.
_ERAS = (
    (date(2019, 5, 1), 2019, "令和", "Reiwa"),
    (date(1989, 1, 8), 1989, "平成", "Heisei"),
    (date(1926, 12, 25), 1926, "昭和", "Showa"),
    (date(1912, 7, 30), 1912, "大正", "Taisho"),
    (date(1873, 1, 1), 1868, "明治", "Meiji"),
)
_MONTHS = (
    "January February March April May June July August September October November December"
).split()


def parse_date(text: str) -> date:
    """Return the calendar date written as ``YYYY-MM-DD``.

    Raises ``ValueError`` for any other spelling (``20250101``, full-width digits) and
    for dates that do not exist (``2025-02-30``).
    """
    if not (isinstance(text, str) and _DATE.fullmatch(text)):
        raise ValueError("not a YYYY-MM-DD date")
    return date.fromisoformat(text)


def parse_datetime(text: str) -> datetime:
    """Return the aware datetime written in RFC 3339 (``2025-10-06T10:30:00+09:00``).

    Raises ``ValueError`` without an offset, for impossible values (hour 24, second 60,
    offset ±24:00) and for other ISO 8601 spellings.
    """
    if not (isinstance(text, str) and _DATETIME.fullmatch(text)):
        raise ValueError("not an RFC 3339 date-time")
    return datetime.fromisoformat(text)


def _era(day: date) -> tuple[str, str, int] | None:
    """Return (ja name, en name, year of era) for ``day``, or None before 1873."""
    for first_day, first_year, ja, en in _ERAS:
        if day >= first_day:
            return ja, en, day.year - first_year + 1
    return None


def format_date(iso: str, lang: str = "ja") -> str:
    """Return the date ``iso`` for people, in 西暦 and 和暦.

    ``"2025-10-06"`` reads ``2025年10月6日（令和7年10月6日）`` or ``6 October 2025 (Reiwa 7)``.
    ``lang`` is ``"ja"`` or ``"en"`` (a region such as ``"ja-JP"`` is ignored). The first
    year of an era is 元年 in Japanese. Dates before 1873 have no era part.
    Raises ``ValueError`` for an invalid date or an unsupported language.
    """
    day = parse_date(iso)
    era = _era(day)
    primary = lang.split("-", 1)[0].lower()
    if primary == "ja":
        text = f"{day.year}年{day.month}月{day.day}日"
        if era is None:
            return text
        year = "元" if era[2] == 1 else str(era[2])
        return f"{text}（{era[0]}{year}年{day.month}月{day.day}日）"
    if primary == "en":
        text = f"{day.day} {_MONTHS[day.month - 1]} {day.year}"
        return text if era is None else f"{text} ({era[1]} {era[2]})"
    raise ValueError(f"unsupported language {lang!r}: use 'ja' or 'en'")
