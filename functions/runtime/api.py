"""The FastAPI app behind a function's HTTP API, with kshop's one error shape."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from functions.runtime.errors import FunctionError, classify, error_body, openapi_responses

if TYPE_CHECKING:
    from fastapi import APIRouter

    from functions.runtime.function import Function

log = logging.getLogger("kshop.api")


def error_response(
    status: int,
    message: str,
    details: list[Any],
    request: Request,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return Response(
        error_body(FunctionError(message, details), request.headers.get("x-request-id")),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "Invalid JSON", [], request)
    details = [
        {"field": ".".join(str(p) for p in e["loc"] if p != "body") or "body", "message": e["msg"]}
        for e in errors
    ]
    return error_response(400, "Validation failed", details, request)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail), [], request, exc.headers)


async def _function_error(request: Request, exc: Exception) -> Response:
    error = classify(exc)
    if error.status >= 500 and not isinstance(exc, FunctionError):
        log.exception("request failed", exc_info=exc)
    return error_response(error.status, error.message, error.details, request, error.headers)


def router(function: Function) -> APIRouter:
    module, _, attribute = (function.api or "").partition(":")
    found: APIRouter = getattr(importlib.import_module(module), attribute or "router")
    return found


def build(function: Function) -> FastAPI:
    from functions.runtime.settings import settings

    app = FastAPI(
        title=f"kshop {function.name}",
        version="0.1.0",
        description=f"The HTTP API of the kshop `{function.name}` function.",
        responses=openapi_responses(400, 413, 500, 503),
        # The runtime traces and measures every request already, events and HTTP alike.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.include_router(router(function))
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http_exception)
    app.add_exception_handler(Exception, _function_error)
    app.add_exception_handler(FunctionError, _function_error)
    if settings().cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings().cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["authorization", "content-type", "if-none-match", "idempotency-key"],
            expose_headers=["etag", "location"],
        )
    return app
