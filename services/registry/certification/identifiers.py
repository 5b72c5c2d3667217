"""Identifiers of the certification chain, checked with their real rules.

The unified social credit code (统一社会信用代码, GB 32100) is python-stdnum's;
the older organisation code (组织机构代码, GB 11714) is embedded in it at
characters 9–17, which is how one enterprise is recognised under both.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Annotated

from pydantic import AfterValidator, StringConstraints
from stdnum.cn import uscc
from stdnum.exceptions import ValidationError

# ASCII digits only: Python's \d also matches other scripts' digits (٢٠٠٢).
APPROVAL_NUMBER = re.compile(r"^CNCA-R-(\d{4})-(\d{3})$", re.ASCII)
# CCC: issue year (4) + body code (2) + product category (4) + serial (6); older ones 12 digits.
CCC_16 = re.compile(r"^(\d{4})(\d{2})(\d{4})(\d{6})$", re.ASCII)
CCC_12 = re.compile(r"^\d{12}$", re.ASCII)
# Management-system numbers (e.g. 00216Q10097R1S) vary by body: accept, do not over-validate.
MANAGEMENT_SYSTEM = re.compile(r"^[0-9A-Z][0-9A-Z/-]{5,39}$")
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class IdentifierError(ValueError):
    """An identifier that breaks its rule; the message says which rule."""


def credit_code(value: str) -> str:
    """The normalised unified social credit code, or IdentifierError."""
    try:
        return uscc.validate(value)
    except ValidationError as exc:
        raise IdentifierError(f"{value!r} is not a valid unified social credit code: {exc.message}") from exc


def org_code_check_character(first_eight: str) -> str:
    total = sum(_ORG_ALPHABET.index(c) * w for c, w in zip(first_eight, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def org_code(value: str) -> str:
    """The normalised 9-character organisation code (hyphen dropped), or IdentifierError."""
    code = value.strip().upper().replace("-", "")
    if not re.fullmatch(r"[0-9A-Z]{8}[0-9X]", code):
        raise IdentifierError(
            f"{value!r} is not an organisation code: 8 digits or capitals and a check character."
        )
    if org_code_check_character(code[:8]) != code[8]:
        raise IdentifierError(f"{value!r} is not an organisation code: the check character is wrong.")
    return code


def org_code_of(credit: str) -> str:
    """The organisation code embedded in a unified social credit code."""
    return credit[8:17]


def approval_number(value: str) -> str:
    """A certification body's approval number CNCA-R-YYYY-NNN."""
    value = value.strip().upper()
    match = APPROVAL_NUMBER.fullmatch(value)
    if not match or not 2000 <= int(match.group(1)) <= date.today().year + 1:
        raise IdentifierError(f"{value!r} is not an approval number of the form CNCA-R-YYYY-NNN.")
    return value


def certificate_number(scheme: str, value: str) -> str:
    """A certificate number checked by its scheme's rule (CCC strictly, others leniently)."""
    value = value.strip().upper()
    if scheme == "ccc":
        match = CCC_16.fullmatch(value)
        if match:
            if not 2002 <= int(match.group(1)) <= date.today().year + 1:
                raise IdentifierError(f"{value!r}: a CCC number starts with its issue year.")
            return value
        if CCC_12.fullmatch(value):
            return value
        raise IdentifierError(f"{value!r} is not a CCC certificate number: 16 digits (or 12 for older ones).")
    if not MANAGEMENT_SYSTEM.fullmatch(value):
        raise IdentifierError(f"{value!r} is not a certificate number: 6–40 digits, capitals, '-' or '/'.")
    return value


def _checked(rule: Callable[[str], str]) -> AfterValidator:
    def check(value: str) -> str:
        try:
            return rule(value)
        except IdentifierError as exc:  # pydantic reports a ValueError as a field error
            raise ValueError(str(exc)) from None

    return AfterValidator(check)


# Input field types: a value breaking its rule is a field error naming the rule.
CreditCode = Annotated[str, StringConstraints(strip_whitespace=True, max_length=32), _checked(credit_code)]
OrgCode = Annotated[str, StringConstraints(strip_whitespace=True, max_length=16), _checked(org_code)]
ApprovalNumber = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=32), _checked(approval_number)
]


def make_org_code(serial: int) -> str:
    """A valid organisation code for a serial number (demo data, test factories)."""
    body = f"{serial:08d}"
    return body + org_code_check_character(body)


def make_credit_code(division_code: str, serial: int, *, authority: str = "9", kind: str = "1") -> str:
    """A valid unified social credit code: authority (9 = market regulation), kind (1 = enterprise),
    the division, the embedded organisation code and the check character."""
    body = f"{authority}{kind}{division_code}{make_org_code(serial)}"
    return body + uscc.calc_check_digit(body)
