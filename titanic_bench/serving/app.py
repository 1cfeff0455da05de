"""``titanic-bench serve``: the REST API over the registry's champion.

The app starts whether or not a model can be loaded (it answers 503 with the
reason until one is), and a background watcher swaps in each new version the
alias points to. The routes live on :data:`router`; the model a request is answered
with is a dependency (:func:`served_model`), read once per request. Predictions call
the scikit-learn pipeline directly on columns of fixed dtypes, skipping pyfunc's
schema enforcement: the request was already validated (a batch in bulk, see
:mod:`.fast.batch`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, cast

import orjson
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from pydantic_core import from_json
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from titanic_bench.errors import StackError
from titanic_bench.paths import state_paths
from titanic_bench.serving.fast.batch import bulk_columns
from titanic_bench.serving.model import ChampionWatcher, LoadedModel, ModelRef, ModelSlot, ModelSource
from titanic_bench.serving.problems import validation_problem
from titanic_bench.serving.schema import (
    Columns,
    Health,
    ModelDescription,
    Passenger,
    PassengerRow,
    Prediction,
    passenger_columns,
    prediction_json,
    predictions_json,
    row,
)
from titanic_bench.serving.settings import (
    BATCH_LIMIT_ENV,
    BODY_LIMIT_ENV,
    ServeSettings,
    add_arguments,
    resolve,
)
from titanic_bench.stack.backend import mask_secrets
from titanic_bench.stack.server import start_embedded
from titanic_bench.tracking.tags import VersionTag

__all__ = ["ServeSettings", "add_arguments", "create_app", "main", "router", "run"]

VERSION_HEADER = "X-Model-Version"
FAST_FAILING_MLFLOW_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


# --- the model and the request as dependencies -------------------------------------------
# ``async def`` dependencies: FastAPI runs a plain ``def`` one in its thread pool, a hop
# that costs more than the dependency itself.


async def model_slot(request: Request) -> ModelSlot:
    """The slot of the app serving this request."""
    return cast(ModelSlot, request.app.state.slot)


async def serve_settings(request: Request) -> ServeSettings:
    return cast(ServeSettings, request.app.state.settings)


async def request_body(request: Request) -> bytes:
    """The raw body. Declared before the model, so an over-long body is a 413 even without one."""
    return await request.body()


async def served_model(slot: Annotated[ModelSlot, Depends(model_slot)]) -> LoadedModel:
    """The model for this request, read from the slot once; 503 with the reason if there is none."""
    loaded = slot.current
    if loaded is None:
        raise HTTPException(503, detail=f"Model not loaded: {slot.problem}")
    return loaded


Slot = Annotated[ModelSlot, Depends(model_slot)]
Settings = Annotated[ServeSettings, Depends(serve_settings)]
Body = Annotated[bytes, Depends(request_body)]
Served = Annotated[LoadedModel, Depends(served_model)]


# --- routes --------------------------------------------------------------------------------

router = APIRouter()
_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"description": "a body over the byte limit, or a batch over the passenger limit"},
    503: {"description": "no model loaded"},
}


@router.get("/health", response_model=Health)
async def health(slot: Slot, settings: Settings) -> Health:
    loaded = slot.current
    return Health(
        status="ok" if loaded else "no_model",
        model_loaded=loaded is not None,
        model_name=loaded.name if loaded else None,
        model_version=loaded.version if loaded else None,
        model_alias=loaded.alias if loaded else None,
        model_uri=loaded.uri if loaded else mask_secrets(settings.model_uri),
        problem=slot.problem,
    )


@router.get("/model", response_model=ModelDescription, responses={503: _ERRORS[503]})
async def model(loaded: Served) -> ModelDescription:
    tags = loaded.tags
    return ModelDescription(
        name=loaded.name,
        version=loaded.version,
        alias=loaded.alias,
        uri=loaded.uri,
        run_id=tags.get(VersionTag.RUN_ID),
        spec=tags.get(VersionTag.SPEC),
        metrics=loaded.metrics,
        data_digest=tags.get(VersionTag.DATA_DIGEST),
        selection_metric=tags.get(VersionTag.SELECTION_METRIC),
        session_id=tags.get(VersionTag.SESSION),
        loaded_at=loaded.loaded_at,
        fast_path=loaded.fast is not None,
    )


# ``async def``: prediction takes a few milliseconds of CPU, cheaper on the event loop
# than a hop to the thread pool (the GIL serialises it either way). Answers are written
# as JSON directly, not validated again against response_model.
@router.post("/predict", response_model=Prediction, responses=_ERRORS)
async def predict(passenger: Passenger, loaded: Served) -> Response:
    classes, probabilities = loaded.predict(passenger_columns([row(passenger)]))
    return _json(prediction_json(classes, probabilities), loaded)


#: The batch body is read as bytes and parsed here (see :func:`_batch_columns`), not by
#: FastAPI, so its schema is declared by hand.
_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"$ref": "#/components/schemas/Passenger"},
                }
            }
        },
    }
}


@router.post("/predict/batch", response_model=list[Prediction], responses=_ERRORS, openapi_extra=_BATCH_BODY)
async def predict_batch(body: Body, loaded: Served, settings: Settings) -> Response:
    classes, probabilities = loaded.predict(_batch_columns(body, settings))
    return _json(predictions_json(classes, probabilities), loaded)


def _json(content: bytes, loaded: LoadedModel) -> Response:
    return Response(content, media_type="application/json", headers={VERSION_HEADER: str(loaded.version)})


# --- batches -------------------------------------------------------------------------------

_BATCHES = TypeAdapter(list[PassengerRow])


class BatchTooLargeError(Exception):
    """A batch with more passengers than the limit: answered 413."""


def _batch_columns(body: bytes, settings: ServeSettings) -> Columns:
    """The model's columns for a batch body: 413 if it has too many passengers, else 422
    naming the row and field of each fault.

    Parsed once by pydantic-core's JSON parser and counted before any validation, then
    checked in bulk (the fast path); only a batch the bulk check refuses is validated by
    pydantic, which names the faults (or accepts what the bulk check only doubted).
    """
    try:
        rows = from_json(body)
    except ValueError:
        rows = None  # not JSON: the validation below says where
    if isinstance(rows, list) and len(rows) > settings.batch_limit:
        raise BatchTooLargeError(
            f"body: the batch has {len(rows)} passengers, over the limit of {settings.batch_limit}. "
            f"Split it, or raise the limit with --batch-limit / {BATCH_LIMIT_ENV}."
        )
    columns = bulk_columns(rows) if settings.fast_path and rows is not None else None
    return columns if columns is not None else _validated_columns(body)


def _validated_columns(body: bytes) -> Columns:
    try:
        passengers = _BATCHES.validate_json(body)
    except ValidationError as error:
        raise RequestValidationError(
            [{**item, "loc": ("body", *item["loc"])} for item in error.errors(include_url=False)]
        ) from None
    if not passengers:
        raise RequestValidationError(
            [
                {
                    "type": "too_short",
                    "loc": ("body",),
                    "msg": "the batch is empty; send 1 passenger or more",
                    "input": [],
                }
            ]
        )
    return passenger_columns(passengers)


# --- errors --------------------------------------------------------------------------------


def _detail(status: int, detail: str) -> Response:
    return Response(orjson.dumps({"detail": detail}), status_code=status, media_type="application/json")


def _body_too_large(limit: int) -> Response:
    return _detail(
        413,
        f"body: over the limit of {limit} bytes. Send fewer passengers per request, "
        f"or raise the limit with --body-limit / {BODY_LIMIT_ENV}.",
    )


async def _validation_error(request: Request, error: Exception) -> Response:
    """422 whose ``message`` names each bad field, its value and what is expected (bounded)."""
    assert isinstance(error, RequestValidationError)
    return Response(validation_problem(error.errors()), status_code=422, media_type="application/json")


async def _batch_too_large(request: Request, error: Exception) -> Response:
    return _detail(413, str(error))


async def _body_counted_too_large(request: Request, error: Exception) -> Response:
    """FastAPI's ``max_body_size`` counted a streamed body past the limit, and stopped reading it."""
    return _body_too_large(cast(ServeSettings, request.app.state.settings).body_bytes)


class DeclaredBodyLimit:
    """Answers a request whose Content-Length is over the limit with the API's 413, unread.

    FastAPI's ``max_body_size`` refuses such a body too, before reading it, but answers a
    bare "Content Too Large"; this gives the same answer as a body counted past the limit.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = Headers(scope=scope).get("content-length", "") if scope["type"] == "http" else ""
        if not (length.isdigit() and int(length) > self.limit):
            return await self.app(scope, receive, send)
        await _body_too_large(self.limit)(scope, receive, send)


# --- the app -------------------------------------------------------------------------------


def create_app(settings: ServeSettings, on_shutdown: Callable[[], None] | None = None) -> FastAPI:
    """The API; the watcher runs while the app's lifespan does, then ``on_shutdown``."""
    slot = ModelSlot()
    source = ModelSource(ModelRef.parse(settings.model_uri), settings.tracking_uri, settings.fast_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        watcher = ChampionWatcher(source, slot, settings.poll_seconds).start()
        try:
            yield
        finally:
            watcher.stop()
            if on_shutdown is not None:
                on_shutdown()

    app = FastAPI(
        title="Titanic survival API",
        description=f"Serves {mask_secrets(settings.model_uri)} from {mask_secrets(settings.tracking_uri)}.",
        version="1",
        lifespan=lifespan,
        exception_handlers={
            RequestValidationError: _validation_error,
            BatchTooLargeError: _batch_too_large,
            413: _body_counted_too_large,
        },
    )
    app.state.slot, app.state.settings = slot, settings
    # The routes' limit, not the app's: the app's would answer its own bare 413 in place
    # of DeclaredBodyLimit's, whatever the middleware's order.
    app.include_router(router, max_body_size=settings.body_bytes)
    app.add_middleware(DeclaredBodyLimit, limit=settings.body_bytes)
    return app


# --- the command -----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; with no tracking URI, run an embedded server alongside.

    Every failure to start is a :class:`~titanic_bench.errors.BenchError`, which the
    command line shows as one line.
    """
    import uvicorn

    settings = resolve(args, tracking_uri=args.tracking_uri or "")  # a bad variable stops it here
    ModelRef.parse(settings.model_uri)
    listener = _listen(args.host, args.port)  # before anything is started
    # The watcher retries on its own schedule; MLflow's default (7 retries with
    # backoff, minutes) would only delay the 503 reason while the registry is down.
    for name, value in FAST_FAILING_MLFLOW_ENV.items():
        os.environ.setdefault(name, value)
    embedded = None if args.tracking_uri else start_embedded(state_paths(args.home))
    if embedded is not None:
        try:
            # Waited for: the server must be the one started here, on the port it ended up on.
            embedded.wait_ready()
        except BaseException:
            embedded.stop()
            raise
        settings = dataclasses.replace(settings, tracking_uri=embedded.url)
    print(
        f"Serving {mask_secrets(settings.model_uri)} from {mask_secrets(settings.tracking_uri)} on "
        f"http://{args.host}:{args.port} (docs at /docs; Ctrl-C stops it)",
        flush=True,
    )
    # uvicorn re-raises SIGTERM/SIGINT once it has shut down, killing this process before
    # any ``finally`` here: the embedded server is stopped by the app's shutdown instead.
    stop_embedded = embedded.stop if embedded is not None else None
    try:
        app = create_app(settings, on_shutdown=stop_embedded)
        config = uvicorn.Config(app, host=args.host, port=args.port, access_log=args.access_log)
        uvicorn.Server(config).run(sockets=[listener])
    finally:
        listener.close()
        if stop_embedded is not None:
            stop_embedded()  # start-up failed before the lifespan began; stop() is idempotent
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """The API's listening socket, bound here so that a taken port is an error on one line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as error:
        raise StackError(
            f"cannot listen on {host}:{port} ({error.strerror or error}). "
            "Stop what uses it, or choose another --port."
        ) from None


def main(argv: list[str] | None = None) -> int:
    """``python -m titanic_bench.serving.app``: the same as ``titanic-bench serve``."""
    from titanic_bench.cli import main as cli_main

    return cli_main(["serve", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
