"""What the legal-affairs domain asks the registry: a reviewer's standing under the enforcement
responsibility system (执法责任制) — active, and holding a post whose duties list the review step."""

from __future__ import annotations

from pydantic import BaseModel

from services.common.client import ServiceClient
from services.common.problems import Forbidden, NotFound

# The step of the case each opinion takes in enforcement: what the reviewer's post must list.
OPINION_STEPS = {"agree": "review_agree", "correct": "review_correct", "investigate_further": "review_return"}


class StandingPost(BaseModel):
    id: int
    name: str
    steps: list[str] = []


class ReviewerStanding(BaseModel):
    officer_id: int
    name: str
    active: bool
    post: StandingPost | None = None


async def reviewer_standing(services: ServiceClient, officer_id: int, opinion: str) -> ReviewerStanding:
    """The reviewer's standing, refused (403) unless active with a post listing the opinion's step."""
    step = OPINION_STEPS[opinion]
    try:
        standing = await services.get(
            f"/api/v1/registry/officers/{officer_id}/standing", model=ReviewerStanding
        )
    except NotFound:
        raise Forbidden(f"The registry holds no officer {officer_id}.", slug="officer-inactive") from None
    if not standing.active:
        raise Forbidden(f"Officer {officer_id} is not active.", slug="officer-inactive")
    if standing.post is None or step not in standing.post.steps:
        post = f"post {standing.post.name}" if standing.post else "no post"
        raise Forbidden(
            f"Officer {officer_id} holds {post}, whose duties do not include the step {step}.",
            slug="post-not-authorized",
            step=step,
        )
    return standing
