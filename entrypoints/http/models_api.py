"""``/v1/models`` (the registry: list, promote or roll back) and ``/v1/training-runs`` (queue, follow)."""

from __future__ import annotations

from typing import Any

from lagom import injectable
from lagom.integrations.starlette import StarletteIntegration
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from application.models import ActivateModel, ListModels
from application.training_runs import REQUESTABLE, GetTrainingRun, QueueTrainingRun
from domain.auth import RouteClass, Scope
from domain.jobs import ModelVersion, TrainingRun
from entrypoints.http.errors import read_object
from entrypoints.http.guard import Guard
from entrypoints.http.views import base_url, iso_time


async def list_models(
    request: Request, guard: Guard = injectable, models: ListModels = injectable
) -> Response:
    await guard(request, Scope.MODELS_TRAIN, RouteClass.READ)
    return JSONResponse({"models": [model_json(m, request) for m in await models()]})


async def activate_model(
    request: Request, guard: Guard = injectable, activate: ActivateModel = injectable
) -> Response:
    await guard(request, Scope.MODELS_ADMIN, RouteClass.SUBMIT)
    return JSONResponse(model_json(await activate(request.path_params["model_id"]), request))


async def queue_training_run(
    request: Request, guard: Guard = injectable, queue: QueueTrainingRun = injectable
) -> Response:
    user = await guard(request, Scope.MODELS_TRAIN, RouteClass.SUBMIT)
    return await queue_run(request, user.subject, queue)


async def queue_run(request: Request, subject: str, queue: QueueTrainingRun) -> Response:
    params: dict[str, Any] = {}
    if await request.body():
        params = await read_object(request, tuple(sorted(REQUESTABLE)))
    run = await queue(subject, params)
    body = run_json(run, request)
    return JSONResponse(body, status_code=202, headers={"Location": body["links"]["self"]})


async def get_training_run(
    request: Request, guard: Guard = injectable, runs: GetTrainingRun = injectable
) -> Response:
    await guard(request, Scope.MODELS_TRAIN, RouteClass.READ)
    return JSONResponse(run_json(await runs(request.path_params["run_id"]), request))


def model_json(model: ModelVersion, request: Request) -> dict[str, Any]:
    this = f"{base_url(request)}/v1/models/{model.id}"
    return {
        "id": model.id,
        "version": model.version,
        "status": model.status.value,
        "metrics": model.metrics,
        "dataset": model.dataset,
        "created_at": iso_time(model.created_at),
        "links": {"self": this, "activate": f"{this}/activate"},
    }


def run_json(run: TrainingRun, request: Request) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status.value,
        "params": run.params,
        "candidate_version": run.candidate_version,
        "promoted": run.promoted,
        "metrics": run.metrics,
        "dataset": run.dataset,
        "report": run.report,
        "error": run.error,
        "requested_by": run.requested_by,
        "created_at": iso_time(run.created_at),
        "started_at": iso_time(run.started_at),
        "finished_at": iso_time(run.finished_at),
        "links": {"self": f"{base_url(request)}/v1/training-runs/{run.id}"},
    }


def model_routes(deps: StarletteIntegration) -> list[BaseRoute]:
    return [
        deps.route("/v1/models", list_models, methods=["GET"], name="list_models"),
        deps.route("/v1/models/{model_id}/activate", activate_model, methods=["POST"], name="activate_model"),
        deps.route("/v1/training-runs", queue_training_run, methods=["POST"], name="queue_training_run"),
        deps.route("/v1/training-runs/{run_id}", get_training_run, methods=["GET"], name="get_training_run"),
    ]
