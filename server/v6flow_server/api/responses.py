"""Answering with a response model the route built itself, without FastAPI's second pass.

FastAPI validates what a route returns against its response model, and for a sync route it
does so in a second trip through the thread pool, before serializing. A model our own
serializers (:mod:`v6flow_server.api.serializers`) just built is valid by construction: the hot
routes declare ``response_model=`` (so OpenAPI is unchanged) and return
:func:`model_response`, which serializes it once, as FastAPI would (``by_alias``).
"""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel


def model_response(model: BaseModel, status_code: int = 200) -> Response:
    """``model`` as the JSON answer (what FastAPI would send for it)."""
    return Response(model.model_dump_json(by_alias=True), status_code=status_code,
                    media_type="application/json")
