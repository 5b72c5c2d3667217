"""Rows read from an upload as it arrives: NDJSON lines or CSV records, never the whole file.

The body comes in chunks; only the unfinished last line of a chunk is carried
to the next. A row longer than the limit is reported and skipped up to its end
without being kept. CSV records are cut on line ends outside quotes (a quoted
cell may hold a line end): UTF-8 never puts a quote or a line-end byte inside a
multi-byte character, so the bytes can be cut before they are decoded, and a
record that is not UTF-8 is that record's error, not the file's.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from typing import Any

import orjson

from services.common.problems import UnprocessableEntity
from services.common.types import has_nul
from services.registry.imports.models import ImportFormat, ImportKind
from services.registry.imports.schemas import LIST_FIELDS, LIST_SEPARATOR, csv_columns

# A row as read: its number, either the fields to validate or the errors already found, and
# its bytes as sent (without the line end), which the digests cover.
Record = tuple[int, dict[str, Any] | list[dict[str, str]], bytes]
_BOM = b"\xef\xbb\xbf"


def row_error(loc: str, message: str, kind: str) -> list[dict[str, str]]:
    return [{"loc": loc, "message": message, "type": kind}]


# PostgreSQL text cannot hold it: the rows are checked here, once, on their raw bytes.
_NUL = row_error("", "Text may not contain the NUL character.", "nul_character")


class EmptyImport(UnprocessableEntity):
    slug, title = "empty-import", "The file holds no rows"


class CsvHeaderInvalid(UnprocessableEntity):
    slug, title = "csv-header-invalid", "The CSV header does not name the row's fields"


async def _pieces(chunks: AsyncIterator[bytes], max_row_bytes: int, csv_quotes: bool):
    """Lists of (line number where the record starts, its bytes or None when too long), per chunk.

    For CSV (``csv_quotes``) a record runs on over line ends while a quote is open.
    """
    carry = b""  # the unfinished last line of the chunks so far
    skipping = False  # inside an over-long line, already reported
    line = 0
    record: list[bytes] = []  # CSV: the lines of a record whose quote is still open
    record_start = record_bytes = 0
    open_quote = discarding = False
    first = True
    async for chunk in chunks:
        if first:
            chunk = chunk.removeprefix(_BOM)
            first = False
        if not chunk:
            continue
        if skipping:
            end = chunk.find(b"\n")
            if end < 0:
                continue
            chunk = chunk[end + 1 :]
            skipping = False
        lines = (carry + chunk).split(b"\n") if carry else chunk.split(b"\n")
        carry = lines.pop()
        out: list[tuple[int, bytes | None]] = []
        for text in lines:
            line += 1
            if not csv_quotes:
                out.append((line, text if len(text) <= max_row_bytes else None))
                continue
            if not (record or discarding):
                record_start, record_bytes = line, 0
            if text.count(b'"') & 1:
                open_quote = not open_quote
            record_bytes += len(text) + 1
            if record_bytes > max_row_bytes:
                discarding, record = True, []
            elif not discarding:
                record.append(text)
            if open_quote:
                continue
            out.append((record_start, None if discarding else b"\n".join(record)))
            record, discarding = [], False
        if len(carry) > max_row_bytes:
            # One line without an end, too long to keep: reported, the rest of it skipped.
            line += 1
            out.append((record_start if record or discarding else line, None))
            carry, record, open_quote, discarding, skipping = b"", [], False, False, True
        if out:
            yield out
    if skipping:
        return
    if carry.strip() or record or discarding:
        line += 1
        if not csv_quotes:
            yield [(line, carry if len(carry) <= max_row_bytes else None)]
            return
        if not (record or discarding):
            record_start = line
        record.append(carry)
        too_long = discarding or record_bytes + len(carry) > max_row_bytes
        # An unclosed quote at the end of the file: the csv reader reports the cells it can.
        yield [(record_start, None if too_long else b"\n".join(record))]


def _parse_csv(texts: list[tuple[int, str, bytes]]) -> list[list[str] | str]:
    """The cells of each record (one reader for all; the error's text for a record it refuses)."""
    try:
        parsed: list[list[str] | str] = list(csv.reader(t for _, t, _ in texts))
        if len(parsed) == len(texts):
            return parsed
    except csv.Error:
        pass
    out: list[list[str] | str] = []
    for _, text, _ in texts:
        try:
            out.append(next(csv.reader([text]), []))
        except csv.Error as exc:
            out.append(str(exc))
    return out


class UploadReader:
    """The rows of one upload, read as they arrive. ``open()`` reads up to the first row,
    so an empty file or a bad CSV header is refused before anything is written."""

    def __init__(
        self, chunks: AsyncIterator[bytes], fmt: ImportFormat, kind: ImportKind, max_row_bytes: int
    ) -> None:
        self.format = fmt
        self.kind = kind
        self.max_row_bytes = max_row_bytes
        self._pieces = _pieces(chunks, max_row_bytes, csv_quotes=fmt == ImportFormat.CSV).__aiter__()
        self._pending: list[Record] = []
        self._header: list[str] | None = None

    async def open(self) -> None:
        while not self._pending:
            try:
                pieces = await self._pieces.__anext__()
            except StopAsyncIteration:
                if self.format == ImportFormat.CSV and self._header is None:
                    raise EmptyImport("The file is empty: a CSV upload starts with its header row.") from None
                raise EmptyImport("The file holds no rows.") from None
            self._pending = self._convert(pieces)

    async def records(self) -> AsyncIterator[list[Record]]:
        if self._pending:
            yield self._pending
            self._pending = []
        async for pieces in self._pieces:
            records = self._convert(pieces)
            if records:
                yield records

    def _convert(self, pieces: list[tuple[int, bytes | None]]) -> list[Record]:
        if self.format == ImportFormat.NDJSON:
            return self._ndjson(pieces)
        return self._csv(pieces)

    def _too_long(self) -> list[dict[str, str]]:
        return row_error("", f"The row is longer than {self.max_row_bytes} bytes.", "row_too_long")

    def _ndjson(self, pieces: list[tuple[int, bytes | None]]) -> list[Record]:
        out: list[Record] = []
        for number, raw in pieces:
            if raw is None:
                out.append((number, self._too_long(), b""))
                continue
            if not raw.strip():
                continue  # a blank line is no row
            try:
                fields = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                out.append((number, row_error("", f"The line is not JSON: {exc}", "json_invalid"), b""))
                continue
            # JSON text carries NUL only escaped; a raw NUL byte is refused by the parser.
            if b"\\u0000" in raw and has_nul(fields):
                out.append((number, _NUL, b""))
            else:
                out.append((number, fields, raw.removesuffix(b"\r")))
        return out

    def _csv(self, pieces: list[tuple[int, bytes | None]]) -> list[Record]:
        out: list[Record] = []
        texts: list[tuple[int, str, bytes]] = []
        for number, raw in pieces:
            if raw is not None and not raw.strip():
                continue  # blank lines are no records
            if self._header is None:
                if raw is None:
                    raise CsvHeaderInvalid(f"The CSV header is longer than {self.max_row_bytes} bytes.")
                try:
                    self._read_header(raw.decode())
                except UnicodeDecodeError:
                    raise CsvHeaderInvalid("The CSV header is not UTF-8 text.") from None
                continue
            if raw is None:
                out.append((number, self._too_long(), b""))
                continue
            if b"\x00" in raw:
                out.append((number, _NUL, b""))
                continue
            try:
                texts.append((number, raw.decode(), raw.removesuffix(b"\r")))
            except UnicodeDecodeError:
                out.append((number, row_error("", "The row is not UTF-8 text.", "unicode_invalid"), b""))
        if not texts:
            return out
        header = self._header or []
        for (number, _, raw), cells in zip(texts, _parse_csv(texts), strict=True):
            if isinstance(cells, str):
                out.append((number, row_error("", f"The row is not CSV: {cells}", "csv_invalid"), b""))
                continue
            if len(cells) != len(header):
                message = f"The row has {len(cells)} cells; the header has {len(header)}."
                out.append((number, row_error("", message, "csv_cells"), b""))
                continue
            fields: dict[str, Any] = {}
            for name, cell in zip(header, cells, strict=True):
                if cell == "":
                    continue  # an empty cell is a field not given
                if name in LIST_FIELDS:
                    fields[name] = [item for item in (s.strip() for s in cell.split(LIST_SEPARATOR)) if item]
                else:
                    fields[name] = cell
            out.append((number, fields, raw))
        out.sort(key=lambda record: record[0])
        return out

    def _read_header(self, text: str) -> None:
        names = [name.strip() for name in next(csv.reader([text]), [])]
        required, optional = csv_columns(self.kind)
        errors = [
            {"loc": f"header.{name}", "message": f"The column {name} is required.", "type": "missing_column"}
            for name in sorted(required - set(names))
        ]
        errors += [
            {
                "loc": f"header.{name}",
                "message": f"No column {name!r} in {self.kind} rows.",
                "type": "unknown_column",
            }
            for name in names
            if name not in required | optional
        ]
        errors += [
            {
                "loc": f"header.{name}",
                "message": f"The column {name} is named twice.",
                "type": "duplicate_column",
            }
            for name in sorted({n for n in names if names.count(n) > 1})
        ]
        if errors:
            raise CsvHeaderInvalid(
                "; ".join(e["message"] for e in errors[:5])
                + f" The columns of {self.kind} rows: required {', '.join(sorted(required))}; "
                f"optional {', '.join(sorted(optional))}.",
                errors=errors,
            )
        self._header = names
