"""The registry service (supervision body, 认证监管机构).

The bureau network, and the certification chain: certification bodies, their
personnel and activities, certified enterprises and their products.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.common.app import create_service_app
from services.registry.certification.certificates.routes import router as certificates_router
from services.registry.certification.routes import router as certification_router
from services.registry.config import RegistrySettings, get_settings
from services.registry.dossiers.routes import router as dossiers_router
from services.registry.imports.routes import IMPORTS_PATH
from services.registry.imports.routes import router as imports_router
from services.registry.inspections.routes import router as inspections_router
from services.registry.inspections.routes_coverage import router as supervision_coverage_router
from services.registry.models import AUDIT, INBOX, OUTBOX
from services.registry.network.routes import router as network_router
from services.registry.pilots.routes import router as pilots_router
from services.registry.plans.routes import router as plans_router
from services.registry.plans.routes_conflicts import router as plan_conflicts_router
from services.registry.plans.routes_coverage import router as plan_coverage_router
from services.registry.plans.routes_public import router as plan_public_router
from services.registry.plans.routes_tasks import router as plan_tasks_router
from services.registry.subjects.routes import router as subjects_router

# Unique constraints two concurrent writers can still hit after the service's own checks.
CONSTRAINT_PROBLEMS = {
    "uq_officer_credential_number": ("credential-taken", "The enforcement credential is already held."),
    "uq_bureau_parent_id_name": ("bureau-name-taken", "The parent already has a bureau of that name."),
    "uq_post_bureau_id_name": ("post-name-taken", "The bureau already has a post of that name."),
    "uq_pilot_designation_current": (
        "pilot-already-designated",
        "The provincial unit already names a grassroots pilot unit; withdraw it before naming another.",
    ),
    "uq_certification_body_approval_number": (
        "approval-number-taken",
        "The approval number is already recorded for another body.",
    ),
    "uq_certification_body_credit_code": (
        "body-credit-code-taken",
        "The credit code is already recorded for another body.",
    ),
    "uq_certification_body_ccc_body_code": (
        "ccc-body-code-taken",
        "The CCC body code is already recorded for another body.",
    ),
    "uq_auditor_registration_number": (
        "registration-number-taken",
        "The registration number is already recorded for another auditor.",
    ),
    "uq_auditor_affiliation_current": (
        "auditor-already-affiliated",
        "The auditor practises in a body already (one at a time); end that affiliation first.",
    ),
    "uq_enterprise_credit_code": ("enterprise-exists", "The enterprise is recorded already."),
    "uq_enterprise_org_code": ("enterprise-exists", "The enterprise is recorded already."),
    "uq_officer_conflict_officer_id_subject_type": (
        "conflict-already-declared",
        "The officer declared a conflict with that subject already.",
    ),
    "uq_certificate_scheme_number": (
        "certificate-number-taken",
        "A certificate of that scheme and number is already registered.",
    ),
}


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    return create_service_app(
        name="registry",
        title="Registry service",
        description=(
            "The registry kept by the certification supervision body (认证监管机构): GB/T 2260 "
            "divisions, the bureau network (national → provincial → city / branch → county), "
            "the bodies of each bureau, posts and officers; certification bodies (认证机构), their "
            "personnel (认证人员) and certification activities (认证活动), certified enterprises "
            "(获证企业) and their products (产品)."
        ),
        settings=settings,
        routers=[
            network_router,
            certification_router,
            subjects_router,
            certificates_router,
            pilots_router,
            inspections_router,
            supervision_coverage_router,
            plans_router,
            plan_coverage_router,
            dossiers_router,
            imports_router,
            plan_tasks_router,
            plan_conflicts_router,
            plan_public_router,
        ],
        audit=AUDIT,
        outbox=OUTBOX,
        inbox=INBOX,
        constraint_problems=CONSTRAINT_PROBLEMS,
        # Bulk sync streams large files; every other route keeps the common limit.
        body_allowances={("POST", IMPORTS_PATH): settings.import_max_body_bytes},
    )
