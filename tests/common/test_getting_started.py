"""docs/getting-started.md stays true to the code: every problem type the code can answer is
listed with its meaning, and every path its curl examples call is a real route."""

from __future__ import annotations

import re

import pytest

from gateway.app import build_api
from gateway.config import GatewaySettings
from gateway.openapi import merge_documents
from tests.common.test_openapi import service_documents
from tools.problem_catalogue import PAGE, missing_from, scan, table

CALLED = re.compile(r"\$GW(/[^\s\"'?$]+)")


@pytest.fixture(scope="module")
def page() -> str:
    return PAGE.read_text(encoding="utf-8")


def test_every_problem_type_in_the_code_is_listed(page):
    types = scan()
    assert missing_from(page, types) == [], "run `python -m tools.problem_catalogue`"


def test_the_scan_reads_every_kind_of_declaration():
    types = scan()
    # The mechanisms' list, a typed error, a `slug=` on a generic error, a constraint, an OAuth error.
    assert types["precondition-failed"].status == 412
    assert types["idempotency-key-reused"].status == 422
    assert types["credential-taken"].status == 409
    assert types["too-many-login-attempts"].status == 429
    assert types["oauth-invalid-client"].status == 401
    assert any(t.where == "enforcement" for t in types.values())
    assert any(t.where == "statistics" for t in types.values())
    assert all(t.meaning for t in types.values())
    assert len(types) > 100


def test_the_page_lists_a_type_the_code_does_not_know_as_missing():
    types = scan()
    assert missing_from("`/problems/not-found`", {"not-found": types["not-found"]}) == []
    assert missing_from("no table", {"not-found": types["not-found"]}) == ["not-found"]
    assert "| `/problems/not-found` | 404 | all |" in table(types)


def test_every_called_path_is_a_route_of_the_merged_document(page):
    doc = merge_documents(build_api(GatewaySettings()).openapi(), service_documents())
    templates = [re.compile("^" + re.sub(r"\{[^}]+\}", r"[^/]+", path) + "$") for path in doc["paths"]]
    called = set(CALLED.findall(page))
    assert len(called) >= 10
    unknown = sorted(path for path in called if not any(t.match(path) for t in templates))
    assert unknown == []
