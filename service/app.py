"""The FastAPI application: ``create_app(settings)`` for tests, ``app`` for uvicorn."""

from __future__ import annotations

import os

# The API process never touches an accelerator (DESIGN §3); set before JAX is imported anywhere.
os.environ["JAX_PLATFORMS"] = "cpu"

from fastapi import FastAPI

from service.deps import install_job_services
from service.errors import BodyLimit, install_error_handlers
from service.limits import RouteBodyLimit
from service.routes import health, internal, jobs, schedules
from service.settings import ServiceSettings, get_settings


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """Build the API with the given settings (the environment's when None)."""
    settings = settings or get_settings()
    app = FastAPI(
        title="lrsched",
        version="0.1.0",
        summary="Learning-rate schedules for JAX: exact evaluation and training jobs.",
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(
        RouteBodyLimit,
        max_body_bytes=settings.job_max_body_bytes,
        method="POST",
        path="/jobs",
        advice="a training config is small; send fewer list entries in the schedule "
        "(LRSCHED_JOB_MAX_BODY_BYTES sets the limit)",
    )
    app.include_router(schedules.router)
    install_job_services(app)
    app.include_router(jobs.router)
    app.include_router(internal.router)
    app.include_router(health.router)

    @app.get("/healthz", tags=["health"], operation_id="healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers. Checks no dependency."""
        return {"status": "ok"}

    return app


app = create_app()
