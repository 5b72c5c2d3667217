"""Schemathesis hooks for tests/e2e/test_schemathesis.py (loaded through ``SCHEMATHESIS_HOOKS``).

The stateful phase starts its chains at "root" operations. Schemathesis picks as reliable roots
the creates and pages none of whose fields name a resource nothing produces, matching field
names to schema names: ``subject_id`` to a ``Subject``, ``bureau_id`` to a ``Bureau``. This
platform's schemas are named for their role (``BureauRead``, ``CaseSummary``), so nearly every
page and create is judged unreliable and the chains start from the few that are left. Here every
page (a GET without path parameters) and every create (a POST without them) is a root.

That choice is a function of schemathesis's own (``is_likely_root_transition``), replaced here;
the version is locked (uv.lock), and an upgrade that renames it fails this module on import.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from schemathesis.specs.openapi import stateful


def _is_root(operation: Any, node: Any, produced_anywhere: set[str]) -> bool:
    return operation.method in ("get", "post") and not operation.path_parameters


if not callable(getattr(stateful, "is_likely_root_transition", None)):
    raise ImportError("schemathesis no longer chooses stateful roots in is_likely_root_transition")
stateful.is_likely_root_transition = _is_root


# In the runs that only chain calls (``PLAIN_PAGES`` set), a page is read without filters: random
# filters (a bureau, a subject, a date) leave a page empty, and an empty page leads nowhere. The
# filters are exercised by the examples, coverage and fuzzing phases of the administrator's run.
PLAIN_PAGES = os.environ.get("SCHEMATHESIS_PLAIN_PAGES") == "1"


@schemathesis.hook
def map_query(context: schemathesis.HookContext, query: dict[str, Any] | None) -> dict[str, Any] | None:
    operation = context.operation
    if PLAIN_PAGES and operation is not None and operation.method == "get" and not operation.path_parameters:
        return {}
    return query
