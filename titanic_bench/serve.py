"""``titanic-bench serve``: the REST API over the registry's champion.

The app starts whether or not a model can be loaded (it answers 503 with the
reason until one is), and a background watcher swaps in each new version the
alias points to. Predictions call the scikit-learn pipeline directly on a frame
built with fixed dtypes, skipping pyfunc's schema enforcement: the request was
already validated (a batch in bulk, see batch_columns).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError

from titanic_bench.backend import BACKEND_ENV, default_backend_uri, ensure_database, mask_uri
from titanic_bench.batch_columns import bulk_columns
from titanic_bench.champion import (
    DEFAULT_MODEL_URI,
    ChampionWatcher,
    LoadedModel,
    ModelLoadError,
    ModelRef,
    ModelSlot,
    ModelSource,
)
from titanic_bench.serving_schema import (
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
from titanic_bench.stack import EmbeddedServer

MODEL_URI_ENV = "TITANIC_BENCH_MODEL_URI"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
POLL_ENV = "TITANIC_BENCH_POLL_SECONDS"
BATCH_LIMIT_ENV = "TITANIC_BENCH_BATCH_LIMIT"
DEFAULT_POLL_SECONDS = 30.0
DEFAULT_BATCH_LIMIT = 10_000
VERSION_HEADER = "X-Model-Version"
FAST_FAILING_MLFLOW_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


@dataclass(frozen=True)
class ServeSettings:
    """What the API serves and how; resolved once from flags and environment."""

    model_uri: str = DEFAULT_MODEL_URI
    tracking_uri: str = "http://127.0.0.1:5000"
    poll_seconds: float = DEFAULT_POLL_SECONDS
    batch_limit: int = DEFAULT_BATCH_LIMIT


def create_app(settings: ServeSettings, on_shutdown: Callable[[], None] | None = None) -> FastAPI:
    """The API; the watcher runs while the app's lifespan does, then ``on_shutdown``."""
    slot = ModelSlot()
    source = ModelSource(ModelRef.parse(settings.model_uri), settings.tracking_uri)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        watcher = ChampionWatcher(source, slot, settings.poll_seconds).start()
        app.state.watcher = watcher
        try:
            yield
        finally:
            watcher.stop()
            if on_shutdown is not None:
                on_shutdown()

    app = FastAPI(
        title="Titanic survival API",
        description=f"Serves {settings.model_uri} from {mask_uri(settings.tracking_uri)}.",
        version="1",
        lifespan=lifespan,
    )
    app.state.slot = slot
    app.add_exception_handler(RequestValidationError, _validation_error)
    _add_model_routes(app, slot, settings)
    _add_predict_routes(app, slot, settings)
    return app


def _served(slot: ModelSlot) -> LoadedModel:
    """The model for this request, read once; 503 with the reason if there is none."""
    loaded = slot.current
    if loaded is None:
        raise HTTPException(503, detail=f"Model not loaded: {slot.problem}")
    return loaded


def _add_model_routes(app: FastAPI, slot: ModelSlot, settings: ServeSettings) -> None:
    @app.get("/health", response_model=Health)
    async def health() -> Health:
        loaded = slot.current
        return Health(
            status="ok" if loaded else "no_model",
            model_loaded=loaded is not None,
            model_name=loaded.name if loaded else None,
            model_version=loaded.version if loaded else None,
            model_alias=loaded.alias if loaded else None,
            model_uri=loaded.uri if loaded else settings.model_uri,
            problem=slot.problem,
        )

    @app.get("/model", response_model=ModelDescription, responses={503: {"description": "no model"}})
    async def model() -> ModelDescription:
        loaded = _served(slot)
        tags = loaded.tags
        return ModelDescription(
            name=loaded.name,
            version=loaded.version,
            alias=loaded.alias,
            uri=loaded.uri,
            run_id=tags.get("run_id"),
            spec=tags.get("spec"),
            metrics=loaded.metrics,
            data_digest=tags.get("data_digest"),
            selection_metric=tags.get("selection_metric"),
            session_id=tags.get("session_id"),
            loaded_at=loaded.loaded_at,
            fast_path=loaded.fast is not None,
        )


def _add_predict_routes(app: FastAPI, slot: ModelSlot, settings: ServeSettings) -> None:
    limit = settings.batch_limit
    errors: dict[int | str, dict[str, Any]] = {
        413: {"description": f"more than {limit} passengers"},
        503: {"description": "no model loaded"},
    }

    # ``async def``: prediction takes a few milliseconds of CPU, cheaper on the event
    # loop than a hop to the thread pool (the GIL serialises it either way). Answers are
    # written as JSON directly, not validated again against response_model.
    @app.post("/predict", response_model=Prediction, responses=errors)
    async def predict(passenger: Passenger) -> Response:
        loaded = _served(slot)
        classes, probabilities = loaded.predict(passenger_columns([row(passenger)]))
        return _json(prediction_json(classes, probabilities), loaded)

    @app.post("/predict/batch", response_model=list[Prediction], responses=errors, openapi_extra=_BATCH_BODY)
    async def predict_batch(request: Request) -> Response:
        columns = _parse_batch(await request.body())
        size = len(columns["Pclass"])
        if size > limit:
            raise HTTPException(
                413,
                detail=f"body: the batch has {size} passengers, over the limit of {limit}. "
                f"Split it, or raise the limit with --batch-limit / {BATCH_LIMIT_ENV}.",
            )
        loaded = _served(slot)
        classes, probabilities = loaded.predict(columns)
        return _json(predictions_json(classes, probabilities), loaded)


_BATCHES = TypeAdapter(list[PassengerRow])
#: The batch body is read as bytes: checked in bulk (batch_columns), and only if that
#: refuses it parsed by pydantic-core into PassengerRow dicts, whose errors name the row
#: and field. FastAPI does not parse it, so its schema is declared by hand.
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


def _parse_batch(body: bytes) -> Columns:
    """The model's columns for a batch body; 422 naming the row and field of each fault."""
    columns = bulk_columns(body)
    if columns is not None:
        return columns
    # Refused in bulk: pydantic finds the faults (or accepts what the bulk check only doubted).
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


def _json(content: bytes, loaded: LoadedModel) -> Response:
    return Response(content, media_type="application/json", headers={VERSION_HEADER: str(loaded.version)})


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    """422 whose ``message`` names each bad field, its value and what is expected."""
    assert isinstance(error, RequestValidationError)
    problems = [_describe(item) for item in error.errors()]
    return JSONResponse(
        status_code=422,
        content={"message": "; ".join(problems), "detail": _json_safe(error.errors())},
    )


def _describe(item: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in item.get("loc", ()))
    if item.get("type") == "json_invalid":
        return f"{location}: the request body is not valid JSON ({item.get('ctx', {}).get('error', '')})"
    if item.get("type") == "missing":
        return f"{location}: field required"
    return f"{location}: {item.get('msg')} (got {item.get('input')!r})"


def _json_safe(errors: Any) -> Any:
    # pydantic puts exception objects in ``ctx``; a 422 must still serialise.
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(errors, custom_encoder={Exception: str})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model-uri",
        default=os.environ.get(MODEL_URI_ENV, DEFAULT_MODEL_URI),
        help=f"model to serve: models:/NAME@ALIAS, models:/NAME/VERSION or any model URI "
        f"(default ${MODEL_URI_ENV} or {DEFAULT_MODEL_URI})",
    )
    parser.add_argument(
        "--tracking-uri",
        default=os.environ.get(TRACKING_URI_ENV),
        help=f"MLflow tracking server (default ${TRACKING_URI_ENV}; unset: start an embedded "
        "server on the state folder, as `titanic-bench ui` does)",
    )
    parser.add_argument("--home", help="state folder for the embedded server (default $TITANIC_BENCH_HOME)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    parser.add_argument(
        "--poll-seconds",
        type=_positive(float, "--poll-seconds"),
        help=f"seconds between checks of the alias for a new version "
        f"(default ${POLL_ENV} or {DEFAULT_POLL_SECONDS:g})",
    )
    parser.add_argument(
        "--batch-limit",
        type=_positive(int, "--batch-limit"),
        help=f"most passengers in one /predict/batch call "
        f"(default ${BATCH_LIMIT_ENV} or {DEFAULT_BATCH_LIMIT})",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request (costs latency)")


def _positive(kind: Callable[[str], Any], name: str) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0:
            raise argparse.ArgumentTypeError(f"{name}={text!r} must be a positive {kind.__name__}.")
        return value

    return convert


def _option(given: Any, env: str, kind: Callable[[str], Any], default: Any) -> Any:
    """The flag's value, else the environment's (checked, naming the variable), else the default."""
    if given is not None:
        return given
    text = os.environ.get(env)
    return default if text is None else _positive(kind, env)(text)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"--port={text!r} must be a port number, 1 to 65535.")
    return int(text)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; with no tracking URI, run an embedded server alongside."""
    import uvicorn

    try:
        poll_seconds = _option(args.poll_seconds, POLL_ENV, float, DEFAULT_POLL_SECONDS)
        batch_limit = _option(args.batch_limit, BATCH_LIMIT_ENV, int, DEFAULT_BATCH_LIMIT)
        ModelRef.parse(args.model_uri)
    except (argparse.ArgumentTypeError, ModelLoadError) as error:
        print(f"titanic-bench serve: error: {error}", file=sys.stderr)
        return 2
    # The watcher retries on its own schedule; MLflow's default (7 retries with
    # backoff, minutes) would only delay the 503 reason while the registry is down.
    for name, value in FAST_FAILING_MLFLOW_ENV.items():
        os.environ.setdefault(name, value)
    embedded = None if args.tracking_uri else _start_embedded(args.home)
    settings = ServeSettings(
        model_uri=args.model_uri,
        tracking_uri=args.tracking_uri or embedded.url,  # type: ignore[union-attr]
        poll_seconds=poll_seconds,
        batch_limit=batch_limit,
    )
    print(
        f"Serving {settings.model_uri} from {mask_uri(settings.tracking_uri)} on "
        f"http://{args.host}:{args.port} (docs at /docs; Ctrl-C stops it)",
        flush=True,
    )
    # uvicorn re-raises SIGTERM/SIGINT once it has shut down, killing this process before
    # any ``finally`` here: the embedded server is stopped by the app's shutdown instead.
    stop_embedded = embedded.stop if embedded is not None else None
    try:
        app = create_app(settings, on_shutdown=stop_embedded)
        uvicorn.run(app, host=args.host, port=args.port, access_log=args.access_log)
    finally:
        if stop_embedded is not None:
            stop_embedded()  # start-up failed before the lifespan began; stop() is idempotent
    return 0


def _start_embedded(home: str | None) -> EmbeddedServer:
    """The state folder's MLflow server, started without waiting: the watcher retries until it is up."""
    from titanic_bench.paths import state_paths

    paths = state_paths(home).create()
    backend = os.environ.get(BACKEND_ENV) or default_backend_uri(paths)
    ensure_database(backend)
    return EmbeddedServer(backend, paths.artifacts, paths.server_log).start()


def main(argv: list[str] | None = None) -> int:
    """``python -m titanic_bench.serve``: the same as ``titanic-bench serve``."""
    parser = argparse.ArgumentParser(prog="titanic-bench serve", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
