"""State machines declared as data: which step leads from which states to which, for whom,
and what it must record.

A service declares its procedure once, as a :class:`TransitionTable`, and asks it
before every step::

    CASE_STEPS = TransitionTable("case", [
        Transition("open", frozenset({LeadState.VERIFIED}), CaseState.OPENED,
                   roles=frozenset({Role.HEAD})),
        Transition("terminate", frozenset({CaseState.OPENED, CaseState.INVESTIGATING}),
                   CaseState.TERMINATED, roles=frozenset({Role.HEAD}), records=("reason",)),
    ])

    transition = CASE_STEPS.resolve(case.state, data.step, principal)  # 409 / 403
    CASE_STEPS.check_records(transition, data.model_dump())             # 422

The refusals name what *is* allowed, so a client can show the next steps
without a second table of its own.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, TypeVar

from services.common.auth import Principal
from services.common.problems import Forbidden, InvalidTransition, UnprocessableEntity

State = TypeVar("State", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Transition(Generic[State]):
    """One step: from any of ``sources`` to ``target``, for a principal holding one of ``roles``,
    recording the fields named in ``records`` (a reason, a decision number…)."""

    step: str
    sources: frozenset[State]
    target: State
    roles: frozenset[str]
    records: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.sources or not self.roles:
            raise ValueError(f"Step {self.step!r} needs at least one source state and one role.")


def _code(state: Any) -> Any:
    """A state as the API shows it: an enumeration by its code."""
    return state.value if isinstance(state, Enum) else state


class TransitionTable(Generic[State]):
    def __init__(self, name: str, transitions: Iterable[Transition[State]]) -> None:
        self.name = name
        self.transitions: tuple[Transition[State], ...] = tuple(transitions)
        self._by_source: dict[tuple[State, str], Transition[State]] = {}
        for transition in self.transitions:
            for source in transition.sources:
                key = (source, transition.step)
                if key in self._by_source:
                    # One state and step must lead to one place, or the table is ambiguous.
                    raise ValueError(f"{name}: step {transition.step!r} is declared twice from {source!r}.")
                self._by_source[key] = transition

    @property
    def steps(self) -> frozenset[str]:
        return frozenset(t.step for t in self.transitions)

    def allowed(self, state: State, principal: Principal) -> list[Transition[State]]:
        """The steps ``principal`` may take from ``state``, in declaration order."""
        return [t for t in self.transitions if state in t.sources and principal.has_role(*t.roles)]

    def resolve(self, state: State, step: str, principal: Principal) -> Transition[State]:
        """The transition ``step`` from ``state``, if ``principal`` may take it.

        A step the state does not allow is a 409 ``invalid-transition`` whose
        ``allowed`` lists what this principal may do instead; a step the state
        allows but only to other roles is a 403 ``role-required``.
        """
        transition = self._by_source.get((state, step))
        if transition is None:
            allowed = [{"step": t.step, "target": _code(t.target)} for t in self.allowed(state, principal)]
            if step in self.steps:
                detail = f"A {self.name} in state {_code(state)} cannot take the step {step}."
            else:
                detail = f"A {self.name} has no step {step}."
            raise InvalidTransition(detail, state=_code(state), allowed=allowed)
        if not principal.has_role(*transition.roles):
            roles = ", ".join(sorted(transition.roles))
            raise Forbidden(
                f"The step {step} of a {self.name} needs one of the roles: {roles}.", slug="role-required"
            )
        return transition

    def check_records(self, transition: Transition[State], given: Mapping[str, Any]) -> None:
        """Refuse (422, naming each field) a step that lacks what it must record."""
        missing = [name for name in transition.records if _blank(given.get(name))]
        if missing:
            message = f"required for the step {transition.step}"
            errors = [{"loc": f"body.{name}", "message": message, "type": "missing"} for name in missing]
            raise UnprocessableEntity(
                f"The step {transition.step} records {', '.join(missing)}: each is {message}.", errors=errors
            )


def _blank(value: Any) -> bool:
    if isinstance(value, str):
        return not value.strip()
    return value is None or value in ([], {}, ())
