"""Parties of graduated enforcement (当事人): a business (统一社会信用代码, ``licence``), a person
(居民身份证号, ``id_card``) or a vehicle (号牌, ``plate``) — which numbers are well formed. Part of
the contract: the gateway checks a party in a URL, participation a shop's licence, coordination
every violation's party, all with these rules. Pure."""
from __future__ import annotations

import re

PARTY_KINDS = {"licence": "统一社会信用代码", "id_card": "居民身份证号码", "plate": "机动车号牌"}
SEVERITIES = ["minor", "general", "serious"]

_ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
_PLATE = re.compile(r"^[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼使领]"
                    r"[A-HJ-NP-Z][A-HJ-NP-Z0-9]{4,5}[A-HJ-NP-Z0-9挂学警港澳]$")


def normalise(kind: str, number: str) -> str:
    return re.sub(r"[\s·\-]", "", str(number or "")).upper()


def id_card_check(first17: str) -> str:
    """GB 11643 check character of an 18-digit citizen ID number."""
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS)) % 11]


def uscc_check(first17: str) -> str:
    """GB 32100 check character of a unified social credit code."""
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS))
    return _USCC_CHARS[(31 - total % 31) % 31]


def party_problem(kind: str, number: str) -> str | None:
    """None when ``number`` is a well-formed number of that kind, else why not (Chinese)."""
    value = normalise(kind, number)
    if kind == "id_card":
        if not re.fullmatch(r"\d{17}[\dX]", value):
            return "身份证号码应为18位（最后一位可为X）"
        if id_card_check(value[:17]) != value[17]:
            return "身份证号码校验位不正确"
    elif kind == "licence":
        if not re.fullmatch(rf"[{_USCC_CHARS}]{{18}}", value):
            return "统一社会信用代码应为18位数字或大写字母（不含I、O、Z、S、V）"
        if uscc_check(value[:17]) != value[17]:
            return "统一社会信用代码校验位不正确"
    elif kind == "plate":
        if not _PLATE.fullmatch(value):
            return "机动车号牌格式不正确，例如 渝A12345"
    else:
        return f"当事人类型应为 {', '.join(PARTY_KINDS)}"
    return None
