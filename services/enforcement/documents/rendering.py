"""Pure functions of the case documents: amounts in yuan and in Chinese capitals (大写金额),
templates filled from a fixed set of placeholders, and the DOCX itself.

A template is plain text with ``{placeholder}`` fields (``{{`` and ``}}`` for braces). Only the
names of ``PLACEHOLDERS`` are allowed, without attribute access, index, conversion or format
spec, so filling a template can do nothing but put the case's words in their places.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from string import Formatter

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Pt

DOCX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

# Every field a template may name, with what it holds (shown with the templates).
PLACEHOLDERS: dict[str, str] = {
    "case_number": "The case's document number (文号), e.g. 浙质监罚字〔2008〕12号",
    "bureau_name": "The bureau that handles the case",
    "case_title": "The case's title (案由)",
    "party_name": "The party (当事人)",
    "party_kind": "单位 or 个人",
    "subjects": "The registry records the case concerns, one a line",
    "lead_source": "Where the lead came from (案件来源)",
    "lead_received_on": "The day the lead was received",
    "lead_summary": "The lead's summary",
    "opening_reason": "The reason the case was opened",
    "approved_by": "The head who approved the opening",
    "opened_on": "The day the case was opened (立案日期)",
    "officers": "The case's officers with their enforcement credential numbers (执法证号)",
    "facts": "The facts found (违法事实)",
    "violation": "The violation as the catalogue holds it, with its article",
    "legal_basis": "The legal basis (法律依据)",
    "penalties": "The penalty items, one a line, amounts in yuan and in capitals",
    "amount_total": "The fines and confiscations together, in yuan (e.g. 60000.00)",
    "amount_total_capital": "The same in Chinese capitals (大写), e.g. 人民币陆万元整",
    "answer_period": "The party's window to state and defend (陈述申辩期限), e.g. 5个工作日",
    "hearing_clause": "The right to ask for a hearing (听证) where the penalty allows one, else empty",
    "notice_date": "The day the prior notice was served",
    "decided_on": "The day of the decision",
    "payment_deadline": "When the fine is to be paid (缴款期限)",
}

_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_PLACES = ("", "拾", "佰", "仟")
_SECTIONS = ("", "万", "亿", "万亿")
_CENT = Decimal("0.01")


def yuan(amount: Decimal) -> str:
    """Yuan with two decimals, as the documents show them: ``60000.00``."""
    return f"{amount.quantize(_CENT):f}"


def _four_digits(n: int) -> str:
    """0 < n < 10000 in capitals, one 零 for each run of inner zeros, none at the end."""
    out, zero = [], False
    for place in range(3, -1, -1):
        digit = n // 10**place % 10
        if digit == 0:
            zero = bool(out)
            continue
        if zero:
            out.append("零")
            zero = False
        out.append(_DIGITS[digit] + _PLACES[place])
    return "".join(out)


def yuan_in_capitals(amount: Decimal) -> str:
    """An amount of yuan in Chinese capital numerals (中文大写金额), as cheques and decisions
    write it: 60000 → 陆万元整, 100005 → 壹拾万零伍元整, 1.05 → 壹元零伍分, 0.50 → 伍角.

    拾 always has its digit (壹拾元整); 整 follows 元 when there are no 角 or 分. Amounts are
    non-negative, to the fen, under 10^16.
    """
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(_CENT):
        raise ValueError(f"{amount} is not a non-negative amount to the fen")
    cents = int(amount * 100)
    whole, jiao, fen = cents // 100, cents // 10 % 10, cents % 10
    if whole >= 10**16:
        raise ValueError(f"{amount} is too large")
    groups = []
    rest = whole
    while rest:
        groups.append(rest % 10000)
        rest //= 10000
    text, zero = "", False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            zero = bool(text)
            continue
        if text and (zero or group < 1000):
            text += "零"
        zero = False
        text += _four_digits(group) + _SECTIONS[index]
    if not text:
        return "零元整" if not (jiao or fen) else _fraction(jiao, fen)
    text += "元"
    if not (jiao or fen):
        return text + "整"
    if jiao == 0:
        return text + "零" + _DIGITS[fen] + "分"
    return text + _fraction(jiao, fen)


def _fraction(jiao: int, fen: int) -> str:
    return (_DIGITS[jiao] + "角" if jiao else "") + (_DIGITS[fen] + "分" if fen else "")


def chinese_date(day: date | None) -> str:
    """2026年7月10日; an absent date is left blank to be written by hand."""
    return f"{day.year}年{day.month}月{day.day}日" if day else "____年__月__日"


def template_errors(text: str) -> list[str]:
    """What keeps ``text`` from being a template: unknown or malformed fields, stray braces."""
    errors: list[str] = []
    try:
        parsed = list(Formatter().parse(text))
    except ValueError as exc:
        return [f"{exc} (write {{{{ and }}}} for a brace)"]
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in PLACEHOLDERS:
            errors.append(f"unknown placeholder {{{field}}}")
        elif spec or conversion:
            errors.append(f"placeholder {{{field}}} takes no format or conversion")
    return errors


def fill(text: str, values: dict[str, str]) -> str:
    """The template with each field replaced by its value: names only, nothing evaluated."""
    out = []
    for literal, field, _, _ in Formatter().parse(text):
        out.append(literal)
        if field is not None:
            out.append(values.get(field, ""))
    return "".join(out)


@dataclass(frozen=True)
class RenderedDocument:
    kind: str
    title: str
    template_version: int
    case_number: str
    text: str  # the filled body, one paragraph a line


def _font(run, size: float, *, bold: bool = False) -> None:
    run.font.size = Pt(size)
    run.font.bold = bold
    run.font.name = "SimSun"
    # Word takes the font of Chinese characters from the east-Asian slot.
    run._element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), "宋体")


def to_docx(document: RenderedDocument) -> bytes:
    """The document as DOCX: the title centred, then each non-empty line a paragraph, and a
    footer naming the template version it was rendered from."""
    docx = Document()
    heading = docx.add_paragraph()
    heading.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _font(heading.add_run(document.title), 18, bold=True)
    for line in document.text.splitlines():
        if not line.strip():
            continue
        paragraph = docx.add_paragraph()
        if line == document.case_number:
            paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
        _font(paragraph.add_run(line), 12)
    footer = docx.sections[0].footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    _font(footer.add_run(f"文书式样 {document.kind} 第{document.template_version}版"), 9)
    props = docx.core_properties
    props.title = f"{document.title} {document.case_number}"
    props.subject = document.case_number
    props.keywords = f"{document.kind}; template version {document.template_version}"
    props.author = "认证执法监督平台"
    out = io.BytesIO()
    docx.save(out)
    return out.getvalue()
