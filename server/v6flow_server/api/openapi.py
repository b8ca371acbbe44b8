"""What the OpenAPI document says about errors, kept true to what the server answers.

FastAPI documents a 422 ``HTTPValidationError`` for every route with parameters; this server
answers such requests 400 ``{"msg", "errors"}`` (CONTRACT §8). :func:`install_openapi`
rewrites the generated document once: 422 becomes 400 :class:`~v6flow.schemas.ValidationMsg`,
every route behind a bearer token documents 401, every route with a body documents 413 (the
body limit), every write documents 409 (a unique constraint, answered by the ``IntegrityError``
handler), and the error models are components.
Routes declare their other refusals with ``responses=errors(403, 404, ...)``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from v6flow.schemas import Msg, ValidationMsg

DESCRIPTIONS: dict[int, str] = {
    400: "The request is incorrect or breaks a rule (the fields are named)",
    401: "No, an invalid or an expired token; or the credentials were refused",
    403: "The caller may not do this",
    404: "No such object",
    409: "The request conflicts with an existing object",
    413: "The request body is larger than the server accepts",
    429: "Too many requests: try again later (see Retry-After)",
    502: "A service the server forwards to (the Prefect API) did not answer",
}
_REF = "#/components/schemas/{model}"
_WRITES = frozenset({"post", "put", "patch", "delete"})


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route: each status with the ``{"msg"}`` body and its meaning."""
    return {status: {"model": ValidationMsg if status == 400 else Msg,
                     "description": DESCRIPTIONS[status]} for status in statuses}


def _json(model_name: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": _REF.format(model=model_name)}}}}


def rewrite_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace FastAPI's 422 by our 400 and document 401 on secured operations."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (Msg, ValidationMsg):
        model_schema = model.model_json_schema(ref_template=_REF)
        components.update(model_schema.pop("$defs", {}))
        components[model.__name__] = model_schema
    for item in schema.get("paths", {}).values():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            if responses.pop("422", None) is not None or operation.get("parameters") \
                    or operation.get("requestBody"):
                responses["400"] = _json("ValidationMsg", DESCRIPTIONS[400])
            if operation.get("requestBody"):  # v6flow_server.api.limits answers it
                responses.setdefault("413", _json("Msg", DESCRIPTIONS[413]))
            if method in _WRITES:  # a unique constraint: the IntegrityError handler's 409
                responses.setdefault("409", _json("Msg", DESCRIPTIONS[409]))
            if operation.get("security"):
                responses.setdefault("401", _json("Msg", DESCRIPTIONS[401]))
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` answer the rewritten document (built once, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = rewrite_errors(get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
