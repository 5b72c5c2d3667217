"""Request and response models of alerts and supervision notices."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.common.dates import PastDate
from services.common.types import EntityId, InputModel
from services.statistics.oversight.models import NoticeState

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
DocumentNumber = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Severity = Literal["near", "past", "missing"]


# --- alerts --------------------------------------------------------------------


class AlertRead(BaseModel):
    id: int
    key: str = Field(description="kind:subject:condition(:due): what the alert is about, unique")
    kind: str = Field(
        description="lead_deadline, case_deadline, case_officers, supervision_notice_answer, and "
        "the other domains' kinds (late filings, late reports…)"
    )
    severity: str = Field(
        description="near (deadline close), past (overdue) or missing (a requirement unmet)"
    )
    subject_type: str
    subject_id: int
    bureau_id: int
    due: date | None
    message: str
    details: dict[str, Any]
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledgement: str | None
    version: int

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": 7012,
                    "key": "case_deadline:case:4711:investigation:past:2026-06-12",
                    "kind": "case_deadline",
                    "severity": "past",
                    "subject_type": "case",
                    "subject_id": 4711,
                    "bureau_id": 23,
                    "due": "2026-06-12",
                    "message": "Case 冀石裕市监罚〔2026〕12号: investigation due 2026-06-12 is overdue",
                    "details": {
                        "number": "冀石裕市监罚〔2026〕12号",
                        "state": "investigating",
                        "rule": "investigation",
                    },
                    "raised_at": "2026-06-13T22:00:03Z",
                    "acknowledged_at": None,
                    "acknowledged_by": None,
                    "acknowledgement": None,
                    "version": 1,
                }
            ]
        }
    }


class AlertAcknowledgement(InputModel):
    note: Note = Field(
        description="What was done about it, or why nothing needs doing (at most 2000 characters)",
        examples=["已督促办案机构于6月15日前完成调查终结"],
    )


# --- supervision notices -----------------------------------------------------------


class NoticeCreate(InputModel):
    to_bureau_id: EntityId = Field(
        description="The receiving bureau: strictly below the sender's, in its subtree"
    )
    subject_type: Literal["case", "matter"] = Field(description="About a case, or about another matter")
    case_id: EntityId | None = Field(
        default=None, description="For subject_type=case: the case, of the receiving bureau's subtree"
    )
    matter: Title = Field(description="What the notice is about (a title)")
    requirements: Text = Field(description="What the receiving bureau is asked to do or explain")
    number: DocumentNumber | None = Field(default=None, description="The notice's document number, if any")
    sent_on: PastDate | None = Field(default=None, description="Default: today (Asia/Shanghai)")
    received_on: PastDate | None = Field(
        default=None,
        description=(
            "When the receiving bureau received it (default: the day it was sent); the windows run from it"
        ),
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "to_bureau_id": 23,
                    "subject_type": "case",
                    "case_id": 4711,
                    "matter": "案件超期未作出处理决定",
                    "requirements": "请于收到通知之日起十个工作日内书面报告案件办理情况及超期原因。",
                    "number": "冀石市监法督〔2026〕3号",
                    "sent_on": "2026-06-01",
                    "received_on": "2026-06-02",
                }
            ]
        }
    )


class NoticeAnswer(InputModel):
    answer: Text = Field(
        description="The receiving bureau's answer (整改/说明情况)",
        examples=["已于6月10日作出处罚决定，超期原因系检验周期较长，已整改。"],
    )


class NoticeObjection(InputModel):
    objection: Text = Field(
        description="Why the receiving bureau objects to the notice",
        examples=["该案已依法中止调查，期限不应计算在内。"],
    )


class ObjectionReply(InputModel):
    outcome: Literal["upheld", "dismissed"] = Field(
        description=(
            "upheld withdraws the notice; dismissed keeps it, and the answer is still owed by its deadline"
        )
    )
    reply: Text = Field(examples=["中止期间已扣除，仍已超期，请按期答复。"])


class NoticeRead(BaseModel):
    id: int
    number: str | None
    from_bureau_id: int
    bureau_id: int = Field(description="The receiving bureau")
    subject_type: str
    case_id: int | None
    matter: str
    requirements: str
    sent_on: date
    received_on: date
    answer_due: date = Field(description="10 working days after receipt")
    objection_due: date = Field(description="5 working days after receipt")
    state: NoticeState
    sent_by: str
    answer: str | None
    answered_on: date | None
    answered_by: str | None
    answered_late: bool | None
    objection: str | None
    objected_on: date | None
    objected_by: str | None
    reply_due: date | None = Field(
        description="10 working days after the objection: the sender's reply is due"
    )
    objection_reply: str | None
    reply_outcome: str | None
    replied_on: date | None
    replied_by: str | None
    created_at: datetime
    updated_at: datetime
    version: int
