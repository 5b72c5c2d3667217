"""The registry service (supervision body, 认证监管机构).

The bureau network now; the certification chain (bodies, certificates, enterprises) later.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.common.app import create_service_app
from services.registry.config import RegistrySettings, get_settings
from services.registry.imports.routes import IMPORTS_PATH
from services.registry.imports.routes import router as imports_router
from services.registry.models import AUDIT
from services.registry.network.routes import router as network_router

# Unique constraints two concurrent writers can still hit after the service's own checks.
CONSTRAINT_PROBLEMS = {
    "uq_officer_credential_number": ("credential-taken", "The enforcement credential is already held."),
    "uq_bureau_parent_id_name": ("bureau-name-taken", "The parent already has a bureau of that name."),
    "uq_post_bureau_id_name": ("post-name-taken", "The bureau already has a post of that name."),
}


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    return create_service_app(
        name="registry",
        title="Registry service",
        description=(
            "The registry kept by the certification supervision body (认证监管机构): GB/T 2260 "
            "divisions, the bureau network (national → provincial → city / branch → county), "
            "the bodies of each bureau, posts and officers."
        ),
        settings=settings,
        routers=[network_router, imports_router],
        audit=AUDIT,
        constraint_problems=CONSTRAINT_PROBLEMS,
        # Bulk sync streams large files; every other route keeps the common limit.
        body_allowances={("POST", IMPORTS_PATH): settings.import_max_body_bytes},
    )
