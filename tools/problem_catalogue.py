"""The problem types the code can answer, read from the source, as the table of docs/getting-started.md.

The mechanisms' types are listed in ``services.common.problems.PROBLEM_TYPES``; each service
names the rules of its own domain where it raises them (``Conflict(..., slug="case-closed")``),
in its typed errors (``slug, title = "...", "..."``), in its constraint names
(``CONSTRAINT_PROBLEMS``) and, at the gateway, as OAuth errors (``oauth-<error>``). This reads
them all with ``ast`` and writes the table between the page's markers.

    python -m tools.problem_catalogue          # rewrite the table in docs/getting-started.md
    python -m tools.problem_catalogue --check  # exit 1 if a type in the code is not in the page
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "getting-started.md"
SOURCES = ("gateway", "services")
START, END = "<!-- problem-types:start -->", "<!-- problem-types:end -->"
# Statuses of the generic errors a domain rule is raised with (services.common.problems).
BASE_STATUSES = {
    "ProblemError": 500,
    "BadRequest": 400,
    "Unauthorized": 401,
    "Forbidden": 403,
    "NotFound": 404,
    "Conflict": 409,
    "InvalidTransition": 409,
    "PreconditionFailed": 412,
    "PayloadTooLarge": 413,
    "UnprocessableEntity": 422,
    "PreconditionRequired": 428,
    "TooManyRequests": 429,
    "UpstreamProblem": 502,
    "ServiceUnavailable": 503,
    "GatewayTimeout": 504,
}


class ProblemType(NamedTuple):
    slug: str
    status: int | None
    meaning: str
    where: str


def _text(node: ast.AST | None) -> str:
    """A string literal, or an f-string with its placeholders shown as `…`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        text = "".join(v.value if isinstance(v, ast.Constant) else "…" for v in node.values)
        return re.sub("…+", "…", text)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _text(node.left) + _text(node.right)
    return ""


def _callee(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _where(path: Path) -> str:
    parts = path.relative_to(ROOT).parts
    return "gateway" if parts[0] == "gateway" else parts[1]


def _class_statuses(trees: list[tuple[Path, ast.Module]]) -> dict[str, tuple[int | None, str | None, str]]:
    """Every error class: (status, slug, title), following its bases to a known status."""
    raw: dict[str, tuple[list[str], int | None, str | None, str]] = {}
    for _, tree in trees:
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            status = slug = None
            title = ""
            for stmt in node.body:
                if not isinstance(stmt, ast.Assign) or len(stmt.targets) != 1:
                    continue
                target, value = stmt.targets[0], stmt.value
                names = [target.id] if isinstance(target, ast.Name) else []
                values = [value]
                if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
                    names = [getattr(e, "id", "") for e in target.elts]
                    values = list(value.elts)
                for name, val in zip(names, values, strict=False):
                    if name == "status" and isinstance(val, ast.Constant):
                        status = val.value
                    elif name == "slug" and isinstance(val, ast.Constant):
                        slug = val.value
                    elif name == "title":
                        title = _text(val)
            bases = [b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in node.bases]
            raw[node.name] = (bases, status, slug, title)

    def status_of(name: str, seen: frozenset[str] = frozenset()) -> int | None:
        if name in BASE_STATUSES:
            return BASE_STATUSES[name]
        if name not in raw or name in seen:
            return None
        bases, status, _, _ = raw[name]
        if status is not None:
            return status
        for base in bases:
            found = status_of(base, seen | {name})
            if found is not None:
                return found
        return None

    return {name: (status_of(name), slug, title) for name, (_, _, slug, title) in raw.items()}


def _status_of(name: str, classes: dict[str, tuple[int | None, str | None, str]]) -> int | None:
    return BASE_STATUSES.get(name) or classes.get(name, (None, None, ""))[0]


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    cut = re.search(r"(?<=[.;:])\s", text)
    return (text[: cut.start()] if cut else text).rstrip(" .;:")


def scan() -> dict[str, ProblemType]:
    """Every problem type in the code, by slug: its status and what it means."""
    files = sorted(
        p for source in SOURCES for p in (ROOT / source).rglob("*.py") if "migrations" not in p.parts
    )
    trees = [(path, ast.parse(path.read_text(encoding="utf-8"))) for path in files]
    classes = _class_statuses(trees)
    # Helpers that build an error (``_field_error(...)``) answer the status of the error they make.
    helpers: dict[str, int] = {}
    for _, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                made = [
                    _status_of(_callee(c), classes)
                    for c in ast.walk(node)
                    if isinstance(c, ast.Call) and _status_of(_callee(c), classes)
                ]
                if made:
                    helpers.setdefault(node.name, made[0])
    found: dict[str, ProblemType] = {}

    def add(slug: str, status: int | None, meaning: str, where: str) -> None:
        if slug and slug not in found:
            found[slug] = ProblemType(slug, status, _first_sentence(meaning), where)

    from services.common.problems import PROBLEM_TYPES

    mechanism_statuses = {
        slug: status for status, slug, _ in classes.values() if slug is not None and status is not None
    }
    mechanism_statuses.update({"role-required": 403, "method-not-allowed": 405, "invalid-value": 422})
    for slug, meaning in PROBLEM_TYPES.items():
        add(slug, mechanism_statuses.get(slug), meaning, "all")
    for path, tree in trees:
        where = _where(path)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                status, slug, title = classes.get(node.name, (None, None, ""))
                if slug and slug != "internal-error":
                    add(slug, status, title, where)
            elif isinstance(node, ast.Call):
                name = _callee(node)
                keywords = {k.arg: k.value for k in node.keywords if k.arg}
                if name == "OAuthError" and node.args and _text(node.args[0]):
                    error = _text(node.args[0])
                    status = keywords.get("status")
                    code = status.value if isinstance(status, ast.Constant) else 400
                    add(
                        f"oauth-{error.replace('_', '-')}",
                        code,
                        f"OAuth `{error}` — " + _text(node.args[1]),
                        where,
                    )
                    continue
                slug_node = keywords.get("slug")
                if isinstance(slug_node, ast.Constant) and isinstance(slug_node.value, str):
                    status = _status_of(name, classes) or helpers.get(name)
                    texts = [_text(a) for a in node.args]
                    meaning = _text(keywords.get("title")) or next((t for t in texts if t), "")
                    add(slug_node.value, status, meaning, where)
            elif (
                isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "CONSTRAINT_PROBLEMS" for t in node.targets)
                and isinstance(node.value, ast.Dict)
            ):
                for value in node.value.values:
                    if isinstance(value, ast.Tuple) and len(value.elts) == 2:
                        add(_text(value.elts[0]), 409, _text(value.elts[1]), where)
    return found


def table(types: dict[str, ProblemType]) -> str:
    order = {"all": 0, "gateway": 1, "registry": 2, "enforcement": 3, "statistics": 4}
    rows = sorted(types.values(), key=lambda t: (order.get(t.where, 9), t.status or 0, t.slug))
    lines = ["| `type` | Status | Where | Meaning |", "|---|---|---|---|"]
    for t in rows:
        meaning = t.meaning.replace("|", "\\|") or "—"
        lines.append(f"| `/problems/{t.slug}` | {t.status or '—'} | {t.where} | {meaning} |")
    return "\n".join(lines)


def missing_from(page: str, types: dict[str, ProblemType]) -> list[str]:
    return sorted(slug for slug in types if f"`/problems/{slug}`" not in page)


def main(argv: list[str]) -> int:
    types = scan()
    page = PAGE.read_text(encoding="utf-8")
    if "--check" in argv:
        missing = missing_from(page, types)
        for slug in missing:
            print(f"not in {PAGE.relative_to(ROOT)}: /problems/{slug}")
        return 1 if missing else 0
    before, rest = page.split(START, 1)
    _, after = rest.split(END, 1)
    PAGE.write_text(f"{before}{START}\n{table(types)}\n{END}{after}", encoding="utf-8")
    print(f"{len(types)} problem types written to {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
