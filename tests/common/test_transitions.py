"""State machines as tables: a step is allowed only from its states and for its roles, the
refusal names what is allowed instead, and a step's recorded fields are required."""

from __future__ import annotations

from enum import StrEnum

import pytest

from services.common.auth import Principal, PrincipalKind, Role
from services.common.problems import Forbidden, InvalidTransition, UnprocessableEntity
from services.common.transitions import Transition, TransitionTable


class LeadState(StrEnum):
    REGISTERED = "registered"
    VERIFIED = "verified"
    OPENED = "opened"
    NOT_OPENED = "not_opened"


LEADS = TransitionTable(
    "lead",
    [
        Transition(
            "verify", frozenset({LeadState.REGISTERED}), LeadState.VERIFIED, frozenset({Role.ENFORCEMENT})
        ),
        Transition("open", frozenset({LeadState.VERIFIED}), LeadState.OPENED, frozenset({Role.HEAD})),
        Transition(
            "decline",
            frozenset({LeadState.REGISTERED, LeadState.VERIFIED}),
            LeadState.NOT_OPENED,
            frozenset({Role.HEAD, Role.ENFORCEMENT}),
            records=("reason",),
        ),
    ],
)


def officer(*roles: str) -> Principal:
    return Principal(
        account_id="a1", kind=PrincipalKind.OFFICER, bureau_id=8, bureau_path="1.8.", roles=frozenset(roles)
    )


class TestResolve:
    def test_an_allowed_step_gives_its_transition(self):
        transition = LEADS.resolve(LeadState.VERIFIED, "open", officer(Role.HEAD))
        assert transition.target == LeadState.OPENED and transition.step == "open"

    def test_one_step_from_several_states(self):
        for state in (LeadState.REGISTERED, LeadState.VERIFIED):
            assert LEADS.resolve(state, "decline", officer(Role.ENFORCEMENT)).target == LeadState.NOT_OPENED

    def test_a_step_not_allowed_from_the_state_is_409_naming_what_is(self):
        with pytest.raises(InvalidTransition) as caught:
            LEADS.resolve(LeadState.REGISTERED, "open", officer(Role.HEAD, Role.ENFORCEMENT))
        error = caught.value
        assert error.status == 409 and error.slug == "invalid-transition"
        assert error.extra["state"] == "registered"
        assert error.extra["allowed"] == [
            {"step": "verify", "target": "verified"},
            {"step": "decline", "target": "not_opened"},
        ]
        body = error.to_response().body
        assert b'"type":"/problems/invalid-transition"' in body and b'"allowed"' in body

    def test_allowed_lists_only_the_principals_steps(self):
        with pytest.raises(InvalidTransition) as caught:
            LEADS.resolve(LeadState.REGISTERED, "open", officer(Role.HEAD))
        assert caught.value.extra["allowed"] == [{"step": "decline", "target": "not_opened"}]

    def test_a_final_state_allows_nothing(self):
        with pytest.raises(InvalidTransition) as caught:
            LEADS.resolve(LeadState.OPENED, "decline", officer(Role.HEAD))
        assert caught.value.extra["allowed"] == []

    def test_an_unknown_step_is_an_invalid_transition(self):
        with pytest.raises(InvalidTransition, match="has no step reopen"):
            LEADS.resolve(LeadState.VERIFIED, "reopen", officer(Role.HEAD))

    def test_a_step_allowed_here_for_other_roles_is_403_role_required(self):
        with pytest.raises(Forbidden) as caught:
            LEADS.resolve(LeadState.VERIFIED, "open", officer(Role.ENFORCEMENT))
        assert caught.value.status == 403 and caught.value.slug == "role-required"
        assert "head" in caught.value.detail

    def test_allowed(self):
        assert [t.step for t in LEADS.allowed(LeadState.VERIFIED, officer(Role.HEAD))] == ["open", "decline"]
        assert LEADS.allowed(LeadState.VERIFIED, officer(Role.LEGAL)) == []


class TestRecords:
    def test_a_step_without_what_it_records_is_422_naming_the_field(self):
        decline = LEADS.resolve(LeadState.VERIFIED, "decline", officer(Role.HEAD))
        for given in ({}, {"reason": None}, {"reason": "   "}):
            with pytest.raises(UnprocessableEntity) as caught:
                LEADS.check_records(decline, given)
            assert caught.value.status == 422
            assert caught.value.extra["errors"] == [
                {"loc": "body.reason", "message": "required for the step decline", "type": "missing"}
            ]

    def test_what_is_recorded_passes(self):
        decline = LEADS.resolve(LeadState.VERIFIED, "decline", officer(Role.HEAD))
        LEADS.check_records(decline, {"reason": "outside our jurisdiction"})
        LEADS.check_records(LEADS.resolve(LeadState.VERIFIED, "open", officer(Role.HEAD)), {})


class TestDeclaration:
    def test_one_state_and_step_lead_to_one_target(self):
        with pytest.raises(ValueError, match="declared twice"):
            TransitionTable(
                "x",
                [
                    Transition("go", frozenset({"a"}), "b", frozenset({"r"})),
                    Transition("go", frozenset({"a", "c"}), "d", frozenset({"r"})),
                ],
            )

    def test_a_step_needs_sources_and_roles(self):
        with pytest.raises(ValueError):
            Transition("go", frozenset(), "b", frozenset({"r"}))
        with pytest.raises(ValueError):
            Transition("go", frozenset({"a"}), "b", frozenset())

    def test_the_problem_is_in_the_documented_list(self):
        from services.common.problems import PROBLEM_TYPES

        assert "invalid-transition" in PROBLEM_TYPES
