"""The administrative penalty procedure as data: every step of a lead and of a case, the
states it leads from and to, the roles that may take it, and what it must record.

A step is also what a post's duties name (执法责任制): the registry keeps, with
each post, the step codes its holders may take (``Post.steps``), and the
service refuses an officer whose post does not list the step.
"""

from __future__ import annotations

from enum import StrEnum

from services.common.auth import Role
from services.common.transitions import Transition, TransitionTable
from services.enforcement.cases.models import CaseState, LeadState


class LeadStep(StrEnum):
    EXTEND = "extend_lead_deadline"
    OPEN = "open_case"
    DECLINE = "decline_lead"


class CaseStep(StrEnum):
    ASSIGN_OFFICERS = "assign_officers"  # not a move of state: the case's officers change
    START_INVESTIGATION = "start_investigation"
    SUSPEND = "suspend_investigation"
    RESUME = "resume_investigation"
    TERMINATE = "terminate"
    TRANSFER = "transfer"
    CLOSE_INVESTIGATION = "close_investigation"
    REQUEST_REVIEW = "request_review"
    REVIEW_AGREE = "review_agree"
    REVIEW_CORRECT = "review_correct"
    REVIEW_RETURN = "review_return"
    NOTIFY = "serve_prior_notice"
    REQUEST_HEARING = "request_hearing"
    CONCLUDE_HEARING = "conclude_hearing"
    EXTEND_DECISION = "extend_decision_deadline"
    DECIDE = "decide"
    DECIDE_NO_PENALTY = "decide_no_penalty"
    SERVE = "serve_decision"
    REVISE_DECISION = "revise_decision"  # after reconsideration (复议) or litigation (诉讼)
    RECORD_PAYMENT = "record_payment"  # not a move of state unless it starts the execution
    REMIND_PAYMENT = "remind_payment"  # 催告: the party neither pays nor appeals
    APPLY_COURT_ENFORCEMENT = "apply_court_enforcement"  # 申请人民法院强制执行
    CLOSE = "close_case"
    ARCHIVE = "archive"
    PUBLISH = "publish"


S = CaseState
HEAD = frozenset({Role.HEAD})
OFFICER = frozenset({Role.ENFORCEMENT})
REVIEWER = frozenset({Role.LEGAL})
ACTIVE = frozenset({S.OPENED, S.INVESTIGATING, S.SUSPENDED})
BEFORE_DECISION = frozenset({S.INVESTIGATION_CLOSED, S.REVIEWED, S.NOTIFIED, S.HEARING, S.HEARD})
RUNNING = frozenset(ACTIVE | BEFORE_DECISION | {S.UNDER_REVIEW})

LEAD_STEPS = TransitionTable(
    "lead",
    [
        Transition(LeadStep.EXTEND, frozenset({LeadState.VERIFYING}), LeadState.VERIFYING, HEAD, ("reason",)),
        Transition(LeadStep.OPEN, frozenset({LeadState.VERIFYING}), LeadState.OPENED, HEAD, ("reason",)),
        Transition(LeadStep.DECLINE, frozenset({LeadState.VERIFYING}), LeadState.DECLINED, HEAD, ("reason",)),
    ],
)

CASE_STEPS = TransitionTable(
    "case",
    [
        Transition(CaseStep.START_INVESTIGATION, frozenset({S.OPENED}), S.INVESTIGATING, OFFICER),
        Transition(CaseStep.SUSPEND, frozenset({S.INVESTIGATING}), S.SUSPENDED, HEAD, ("reason",)),
        Transition(CaseStep.RESUME, frozenset({S.SUSPENDED}), S.INVESTIGATING, HEAD, ("reason",)),
        Transition(CaseStep.TERMINATE, RUNNING, S.TERMINATED, HEAD, ("reason", "legal_basis")),
        Transition(CaseStep.TRANSFER, RUNNING, S.TRANSFERRED, HEAD, ("reason", "transferred_to")),
        Transition(
            CaseStep.CLOSE_INVESTIGATION,
            frozenset({S.INVESTIGATING}),
            S.INVESTIGATION_CLOSED,
            OFFICER,
            ("facts", "legal_basis", "violation_code", "penalties"),
        ),
        Transition(CaseStep.REQUEST_REVIEW, frozenset({S.INVESTIGATION_CLOSED}), S.UNDER_REVIEW, OFFICER),
        Transition(CaseStep.REVIEW_AGREE, frozenset({S.UNDER_REVIEW}), S.REVIEWED, REVIEWER, ("reason",)),
        Transition(
            CaseStep.REVIEW_CORRECT,
            frozenset({S.UNDER_REVIEW}),
            S.REVIEWED,
            REVIEWER,
            ("reason", "penalties"),
        ),
        Transition(
            CaseStep.REVIEW_RETURN, frozenset({S.UNDER_REVIEW}), S.INVESTIGATING, REVIEWER, ("reason",)
        ),
        Transition(CaseStep.NOTIFY, frozenset({S.REVIEWED}), S.NOTIFIED, OFFICER),
        Transition(CaseStep.REQUEST_HEARING, frozenset({S.NOTIFIED}), S.HEARING, OFFICER),
        Transition(CaseStep.CONCLUDE_HEARING, frozenset({S.HEARING}), S.HEARD, OFFICER, ("reason",)),
        Transition(
            CaseStep.EXTEND_DECISION,
            frozenset(ACTIVE | BEFORE_DECISION | {S.UNDER_REVIEW}),
            None,  # type: ignore[arg-type]  # stays where it is
            HEAD,
            ("reason", "extension_days"),
        ),
        Transition(
            CaseStep.DECIDE,
            frozenset({S.NOTIFIED, S.HEARD}),
            S.DECIDED,
            HEAD,
            ("legal_basis", "penalties"),
        ),
        Transition(
            CaseStep.DECIDE_NO_PENALTY,
            frozenset({S.INVESTIGATION_CLOSED, S.REVIEWED, S.NOTIFIED, S.HEARD}),
            S.DECIDED,
            HEAD,
            ("reason", "legal_basis"),
        ),
        Transition(CaseStep.SERVE, frozenset({S.DECIDED}), S.SERVED, OFFICER, ("service_method",)),
        Transition(
            CaseStep.REVISE_DECISION,
            frozenset({S.DECIDED, S.SERVED, S.EXECUTING, S.CLOSED, S.ARCHIVED, S.PUBLISHED}),
            None,  # type: ignore[arg-type]  # stays where it is
            HEAD,
            ("reason", "legal_basis", "penalties"),
        ),
        Transition(
            CaseStep.REMIND_PAYMENT,
            frozenset({S.SERVED, S.EXECUTING}),
            None,  # type: ignore[arg-type]  # stays where it is
            OFFICER,
        ),
        Transition(
            CaseStep.APPLY_COURT_ENFORCEMENT,
            frozenset({S.SERVED, S.EXECUTING}),
            None,  # type: ignore[arg-type]  # stays where it is
            HEAD,
            ("reason",),
        ),
        Transition(CaseStep.CLOSE, frozenset({S.SERVED, S.EXECUTING}), S.CLOSED, HEAD),
        Transition(CaseStep.ARCHIVE, frozenset({S.CLOSED, S.TERMINATED, S.TRANSFERRED}), S.ARCHIVED, OFFICER),
        Transition(CaseStep.PUBLISH, frozenset({S.CLOSED, S.ARCHIVED}), S.PUBLISHED, OFFICER),
    ],
)

# Steps any officer of the bureau may take; the others only the case's own officers.
CASE_OFFICER_STEPS = frozenset(
    {
        CaseStep.START_INVESTIGATION,
        CaseStep.CLOSE_INVESTIGATION,
        CaseStep.REQUEST_REVIEW,
        CaseStep.NOTIFY,
        CaseStep.REQUEST_HEARING,
        CaseStep.CONCLUDE_HEARING,
        CaseStep.SERVE,
        CaseStep.RECORD_PAYMENT,
        CaseStep.REMIND_PAYMENT,
        CaseStep.ARCHIVE,
        CaseStep.PUBLISH,
    }
)
REVIEW_STEPS = frozenset({CaseStep.REVIEW_AGREE, CaseStep.REVIEW_CORRECT, CaseStep.REVIEW_RETURN})
