"""年齢到達: the ``age_equal_or_over`` claims of a 住民票, computed at issuance.

The EU PID rulebook's ``age_equal_or_over`` object has one boolean member per age
(``"18"``, ``"20"``: 成年 since 2022, and the age for alcohol and tobacco), each
selectively disclosable on its own, so a company can learn 「20歳以上」 and not the
birth date.

A person reaches an age at the start of their birthday (年齢計算ニ関スル法律 and 民法
§143: the period counted from the day of birth ends at the end of the day before the
anniversary). Someone born on 29 February reaches it on 1 March in a common year, when
the anniversary does not exist and the period ends with February (民法 §143(2)
ただし書). Days are Japan's (JST): the issuance date is the date in Japan at ``now``.

The values are true on the issuance date; a credential valid for months does not
change when its holder has a birthday meanwhile: issue a new one.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Final

from ..encoding import JST
from .dates import parse_date

__all__ = ["AGE_THRESHOLDS", "age_equal_or_over", "age_on", "issuance_date"]

AGE_THRESHOLDS: Final = (18, 20)


def age_on(birthdate: date, day: date) -> int:
    """The age in full years on ``day`` of someone born on ``birthdate``. Raises
    ``ValueError`` when ``day`` is before the birth."""
    if day < birthdate:
        raise ValueError(f"{day.isoformat()} is before the birth date {birthdate.isoformat()}")
    # (month, day) order: 29 February is reached on 1 March of a common year.
    before_birthday = (day.month, day.day) < (birthdate.month, birthdate.day)
    return day.year - birthdate.year - int(before_birthday)


def issuance_date(now: float) -> date:
    """The date in Japan at ``now`` (seconds since the epoch)."""
    return datetime.fromtimestamp(now, JST).date()


def age_equal_or_over(birthdate: str, *, on: date) -> dict[str, bool]:
    """``{"18": …, "20": …}`` for a birth date ``YYYY-MM-DD`` on the date ``on``.
    Raises ``ValueError`` for a malformed or impossible birth date, or one after ``on``."""
    age = age_on(parse_date(birthdate), on)
    return {str(threshold): age >= threshold for threshold in AGE_THRESHOLDS}
