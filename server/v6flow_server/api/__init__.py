"""The HTTP layer: routers, dependencies, error handlers, pagination and response serializers."""

from __future__ import annotations

from fastapi import APIRouter

from v6flow_server.api.routes import (
    audit,
    blobstream,
    collaboration,
    events,
    kill,
    misc,
    node,
    organization,
    password,
    port,
    prefect_proxy,
    recover,
    relay,
    result,
    role,
    run,
    study,
    task,
    token,
    ui,
    user,
    vpn,
)

ROUTERS: tuple[APIRouter, ...] = (
    token.router,
    password.router,
    recover.router,
    organization.router,
    collaboration.router,
    study.router,
    node.router,
    user.router,
    task.router,
    run.router,
    result.router,
    kill.router,
    role.router,
    events.router,
    misc.router,
    port.router,
    vpn.router,
    relay.router,
    blobstream.router,
    audit.router,
    ui.router,
    prefect_proxy.router,
)
