"""Check digits of the two public identifiers a document carries.

- 全国地方公共団体コード (local government code, JIS X 0401/0402 based): 6 digits, the
  first two a prefecture (01-47), the last a modulus-11 check digit over the first five.
- 法人番号 (corporate number, 法人番号の指定等に関する省令): 13 digits, the *first* a
  modulus-9 check digit over the 12-digit base.
"""

from __future__ import annotations

_MUNICIPALITY_WEIGHTS = (6, 5, 4, 3, 2)
_PREFECTURES = range(1, 48)


def _digits(text: str, length: int, what: str) -> list[int]:
    """Return the ASCII digits of ``text``; raise ``ValueError`` unless exactly ``length``."""
    # isdigit() alone would accept full-width and other Unicode digits.
    if not (isinstance(text, str) and len(text) == length and text.isascii() and text.isdigit()):
        raise ValueError(f"{what} must be {length} ASCII digits")
    return [ord(c) - 48 for c in text]


def municipality_check_digit(first_five: str) -> str:
    """Return the check digit that completes a 5-digit local government code.

    Raises ``ValueError`` unless ``first_five`` is exactly five ASCII digits.
    """
    digits = _digits(first_five, 5, "the code without its check digit")
    remainder = sum(w * d for w, d in zip(_MUNICIPALITY_WEIGHTS, digits, strict=True)) % 11
    return str((11 - remainder) % 10)


def is_valid_municipality_code(code: object) -> bool:
    """Return whether ``code`` is a well-formed 全国地方公共団体コード.

    Six ASCII digits, a prefecture number 01-47, and a matching check digit. Whether
    the code is currently assigned to a municipality is not checked (codes of merged
    municipalities stay meaningful in old documents).
    """
    if not (isinstance(code, str) and len(code) == 6 and code.isascii() and code.isdigit()):
        return False
    if int(code[:2]) not in _PREFECTURES:
        return False
    return municipality_check_digit(code[:5]) == code[5]


def corporate_number_check_digit(base: str) -> str:
    """Return the leading check digit of a 法人番号 whose 12-digit base is ``base``.

    With P(n) the n-th digit counted from the right and Q(n) = 1 for odd n, 2 for even
    n, the check digit is ``9 - (Σ P(n)·Q(n) mod 9)``.
    Raises ``ValueError`` unless ``base`` is exactly twelve ASCII digits.
    """
    digits = _digits(base, 12, "the corporate number base")
    total = sum(d * (1 if n % 2 else 2) for n, d in enumerate(reversed(digits), start=1))
    return str(9 - total % 9)


def is_valid_corporate_number(number: object) -> bool:
    """Return whether ``number`` is 13 ASCII digits whose first digit checks the rest."""
    if not (
        isinstance(number, str) and len(number) == 13 and number.isascii() and number.isdigit()
    ):
        return False
    return corporate_number_check_digit(number[1:]) == number[0]
