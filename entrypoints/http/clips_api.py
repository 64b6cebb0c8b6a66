"""``/v1/clips``: a clip's metadata, its mp4 (with HTTP Range), its captions, and ratings."""

from __future__ import annotations

from pathlib import Path

from lagom import injectable
from lagom.integrations.starlette import StarletteIntegration
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute

from application.get_clip import GetClip
from application.rate_clip import RateClip
from domain.auth import RouteClass, Scope
from domain.errors import InvalidInput, NotFound
from domain.jobs import StoredClip
from entrypoints.http.errors import read_object
from entrypoints.http.guard import Guard
from entrypoints.http.views import clip_json, feedback_json

_CAPTION_TYPES = {"srt": "application/x-subrip; charset=utf-8", "vtt": "text/vtt; charset=utf-8"}


async def get_clip(request: Request, guard: Guard = injectable, clips: GetClip = injectable) -> Response:
    user = await guard(request, Scope.VIDEOS_READ, RouteClass.READ)
    clip, rating = await clips.rated(user.subject, request.path_params["clip_id"])
    return JSONResponse(clip_json(clip, request, rating))


async def clip_media(request: Request, guard: Guard = injectable, clips: GetClip = injectable) -> Response:
    user = await guard(request, Scope.VIDEOS_READ, RouteClass.READ)
    clip = await clips(user.subject, request.path_params["clip_id"])
    # FileResponse answers Range requests (206, multipart ranges, 416) and conditional requests itself.
    return FileResponse(
        _existing(clip.media_path, clip), media_type="video/mp4", filename=f"clip_{clip.rank:02d}.mp4"
    )


async def clip_captions_srt(
    request: Request, guard: Guard = injectable, clips: GetClip = injectable
) -> Response:
    return await _captions(request, guard, clips, "srt")


async def clip_captions_vtt(
    request: Request, guard: Guard = injectable, clips: GetClip = injectable
) -> Response:
    return await _captions(request, guard, clips, "vtt")


async def _captions(request: Request, guard: Guard, clips: GetClip, fmt: str) -> Response:
    user = await guard(request, Scope.VIDEOS_READ, RouteClass.READ)
    clip = await clips(user.subject, request.path_params["clip_id"])
    if fmt not in clip.captions:
        raise NotFound(f"clip {clip.id} has no {fmt} captions (the job did not ask for them)")
    path = _existing(clip.captions[fmt], clip)
    return FileResponse(path, media_type=_CAPTION_TYPES[fmt], filename=f"clip_{clip.rank:02d}.{fmt}")


async def rate_clip(request: Request, guard: Guard = injectable, rate: RateClip = injectable) -> Response:
    user = await guard(request, Scope.VIDEOS_READ, RouteClass.READ)
    rating = (await read_object(request, ("rating",))).get("rating")
    if not isinstance(rating, int) or isinstance(rating, bool):
        raise InvalidInput("rating must be -1 (thumbs down) or 1 (thumbs up)")
    stored = await rate(user.subject, request.path_params["clip_id"], rating)
    return JSONResponse(feedback_json(stored))


def _existing(path_text: str, clip: StoredClip) -> Path:
    path = Path(path_text)
    if not path.is_file():
        raise NotFound(f"the files of clip {clip.id} are gone from the media store")
    return path


def clip_routes(deps: StarletteIntegration) -> list[BaseRoute]:
    return [
        deps.route("/v1/clips/{clip_id}", get_clip, methods=["GET"], name="get_clip"),
        deps.route("/v1/clips/{clip_id}/media", clip_media, methods=["GET"], name="clip_media"),
        deps.route(
            "/v1/clips/{clip_id}/captions.srt", clip_captions_srt, methods=["GET"], name="clip_captions_srt"
        ),
        deps.route(
            "/v1/clips/{clip_id}/captions.vtt", clip_captions_vtt, methods=["GET"], name="clip_captions_vtt"
        ),
        deps.route("/v1/clips/{clip_id}/feedback", rate_clip, methods=["POST"], name="rate_clip"),
    ]
