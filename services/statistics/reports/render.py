"""A report document as JSON, CSV and XLSX, each with a strong ETag computed from its bytes.

Every rendering is deterministic (the same document gives the same bytes in any process, after
any restart), so the ETag — the first 32 hex digits of the SHA-256 of the body — changes exactly
when the content does. The XLSX is written with fixed timestamps for the same reason.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import datetime
from typing import Any

import orjson
from openpyxl import Workbook
from openpyxl.chart import LineChart, Reference
from openpyxl.styles import Font

CSV_COLUMNS = ("bureau_id", "period", "state", "revision", "measure", "dimension", "value", "amount")
# Measures the trend chart prefers when the report holds them; otherwise its first ones by name.
TREND_MEASURES = ("leads_received", "cases_opened", "cases_closed", "cases_pending", "fines_decided")
TREND_SIZE = 4
_FIXED_TIME = datetime(2000, 1, 1)
_MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")


def json_body(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_UTC_Z)


def csv_body(document: dict[str, Any]) -> bytes:
    """One line per figure, with a header line; UTF-8, CRLF line ends (RFC 4180)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for f in document["figures"]:
        writer.writerow(
            [
                document["bureau_id"],
                document["period"],
                document["state"],
                "" if document["revision"] is None else document["revision"],
                f["measure"],
                f["dimension"],
                f["value"],
                f["amount"],
            ]
        )
    return out.getvalue().encode()


def trend_measures(document: dict[str, Any]) -> list[str]:
    names = sorted({f["measure"] for f in document["figures"] if f["dimension"] == "all"})
    preferred = [m for m in TREND_MEASURES if m in names]
    return (preferred or names)[:TREND_SIZE]


def _number(amount: str | None) -> float | int | None:
    if amount is None:
        return None
    value = float(amount)
    return int(value) if value.is_integer() else value


def xlsx_body(document: dict[str, Any], trend: list[tuple[str, dict[str, str | None]]]) -> bytes:
    """A workbook for people: the figures sheet, the trend's data and a chart sheet of the trend
    (``trend``: each period of it with its figures of the main measures)."""
    wb = Workbook()
    sheet = wb.active
    sheet.title = "报表 figures"
    revision = document["revision"]
    heading = [
        ("认证执法统计报表 statistical report", None),
        ("bureau", f"{document['bureau_name'] or ''} ({document['bureau_id']})"),
        ("period", document["period"]),
        ("state", document["state"] + (f", revision {revision}" if revision else "")),
        ("due on", str(document["due_on"])),
    ]
    for label, value in heading:
        sheet.append([label, value])
    sheet["A1"].font = Font(bold=True)
    sheet.append([])
    sheet.append(["measure", "dimension", "value", "amount"])
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    for f in document["figures"]:
        sheet.append([f["measure"], f["dimension"], f["value"], _number(f["amount"])])
    for column, width in zip("ABCD", (28, 14, 24, 16), strict=True):
        sheet.column_dimensions[column].width = width

    data = wb.create_sheet("趋势 trend data")
    measures = list(trend[0][1]) if trend else []
    data.append(["period", *measures])
    for period, values in trend:
        data.append([period, *(_number(values[m]) for m in measures)])
    chart_sheet = wb.create_chartsheet("趋势图 trend")
    chart = LineChart()
    chart.title = f"{document['period']}: trend"
    chart.y_axis.title = "amount"
    chart.x_axis.title = "period"
    if measures:
        chart.add_data(
            Reference(data, min_col=2, max_col=1 + len(measures), min_row=1, max_row=1 + len(trend)),
            titles_from_data=True,
        )
        chart.set_categories(Reference(data, min_col=1, min_row=2, max_row=1 + len(trend)))
    chart_sheet.add_chart(chart)

    wb.properties.created = wb.properties.modified = _FIXED_TIME
    wb.properties.creator = "certification enforcement supervision platform"
    raw = io.BytesIO()
    wb.save(raw)
    return _fixed_zip(raw.getvalue())


def _fixed_zip(data: bytes) -> bytes:
    """The same archive with every entry's timestamp fixed: the same workbook, the same bytes."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(2000, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            content = source.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps the save time there
                content = _MODIFIED.sub(rb"\g<1>2000-01-01T00:00:00Z\g<2>", content)
            target.writestr(fixed, content)
    return out.getvalue()
