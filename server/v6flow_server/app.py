"""The FastAPI application factory (no import-time side effects)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime

import structlog
from fastapi import FastAPI
from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool

from v6flow.compat import VANTAGE6_VERSION
from v6flow.wire import utcnow
from v6flow_server.api import ROUTERS
from v6flow_server.api.access_log import AccessLogMiddleware
from v6flow_server.api.deps import install_unit_of_work
from v6flow_server.api.error_handlers import method_table, register_error_handlers
from v6flow_server.api.limits import install_body_limits
from v6flow_server.api.openapi import install_openapi
from v6flow_server.auth.tokens import TokenIssuer
from v6flow_server.blobs import open_blob_store
from v6flow_server.blobs.janitor import BlobJanitor
from v6flow_server.db.migrate import upgrade_to_head
from v6flow_server.db.session import make_engine, make_session_factory
from v6flow_server.events import EventBus, InProcessEventBus, Outbox
from v6flow_server.prefect_gateway import PrefectGateway
from v6flow_server.services import bootstrap, presence
from v6flow_server.settings import ServerSettings
from v6flow_server.state import AppState
from v6flow_server.ui import install_ui

API_PREFIX = "/api"
log = structlog.get_logger(__name__)


#: Key of the PostgreSQL advisory lock replicas hold while one of them prepares the database.
_PREPARE_LOCK = 0x76366677  # "v6fw"


@contextlib.contextmanager
def _one_replica_at_a_time(engine: Engine) -> Iterator[None]:
    """On PostgreSQL, replicas starting together migrate and seed one after the other."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PREPARE_LOCK})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PREPARE_LOCK})
            conn.commit()


def prepare_database(state: AppState) -> TokenIssuer:
    """Migrate, seed rules/roles, create root on first start and load the JWT secret.

    Marks no node offline: presence belongs to the replicas that hold the nodes' streams
    (:mod:`v6flow_server.services.presence`).

    Raises:
        ConfigurationError: the database has no users and no root password is set, or the
            JWT key file is unusable (``jwt_secret_file``).
    """
    settings = state.settings
    with _one_replica_at_a_time(state.engine):
        upgrade_to_head(state.engine)
        with state.session_factory.begin() as session:
            bootstrap.seed_rules_and_roles(session=session)
            password = (settings.root_password.get_secret_value() if settings.root_password
                        else None)
            if bootstrap.ensure_root_user(session=session, root_password=password):
                log.info("root_user_created", username=bootstrap.ROOT_USERNAME)
            secret = bootstrap.load_jwt_secret(
                session=session, secret_file=settings.secret_file(),
                configured=settings.jwt_secret.get_secret_value() if settings.jwt_secret
                else None)
    log.info("jwt_key_loaded", source="setting" if settings.jwt_secret else "file",
             path=None if settings.jwt_secret else str(settings.secret_file().resolve()))
    return TokenIssuer(secret=secret, access_minutes=settings.access_token_minutes,
                       refresh_minutes=settings.refresh_token_minutes)


def live_after(state: AppState, now: datetime) -> datetime:
    """Stream rows refreshed before this are dead (their replica stopped)."""
    return presence.live_after(now, state.settings.presence_interval_seconds)


def presence_round(state: AppState, streams: dict[str, int]) -> list[int]:
    """One round of the presence job: refresh this replica's streams, sweep the rest.

    Args:
        state: the app.
        streams: stream id → node id of the streams open on this replica.

    Returns:
        The ids of the runs failed because their node was offline too long.
    """
    outbox = Outbox()
    now = utcnow()
    with state.session_factory.begin() as session:
        presence.heartbeat(session=session, replica=state.replica, streams=streams, now=now)
    with state.session_factory.begin() as session:
        failed = presence.sweep(
            session=session, live_after=live_after(state, now), outbox=outbox, now=now,
            offline_after=state.settings.node_offline_fail_seconds)
    outbox.flush_to(state.bus)
    if failed:
        log.warning("runs_failed_node_offline", run_ids=failed)
    return failed


async def presence_job(state: AppState) -> None:
    """Run :func:`presence_round` every ``presence_interval_seconds`` until cancelled."""
    while True:
        await asyncio.sleep(state.settings.presence_interval_seconds)
        try:
            await run_in_threadpool(presence_round, state, state.streams.snapshot())
        except Exception:  # a failed round (database away) must not end the job
            log.exception("presence_round_failed")


def leave_presence(state: AppState) -> None:
    """This replica stops: drop its stream rows; nodes streaming nowhere else go offline."""
    outbox = Outbox()
    now = utcnow()
    with state.session_factory.begin() as session:
        presence.leave(session=session, replica=state.replica, outbox=outbox, now=now,
                       live_after=live_after(state, now))
    outbox.flush_to(state.bus)


def make_bus(settings: ServerSettings, engine: Engine) -> EventBus:
    """The event bus the settings ask for (``event_bus``)."""
    if settings.bus_kind() == "postgres":
        from v6flow_server.events_pg import PostgresEventBus

        return PostgresEventBus(engine=engine, queue_size=settings.event_queue_size,
                                retention_seconds=settings.event_retention_seconds)
    return InProcessEventBus(queue_size=settings.event_queue_size)


def create_app(settings: ServerSettings, *, engine: Engine | None = None,
               bus: EventBus | None = None) -> FastAPI:
    """Build the app; the database is prepared in the lifespan (or earlier by the CLI)."""
    engine = engine or make_engine(settings.database_url,
                                   sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
                                   sqlite_synchronous=settings.sqlite_synchronous)
    state = AppState(settings=settings, engine=engine,
                     session_factory=make_session_factory(engine),
                     bus=bus or make_bus(settings, engine), blob_store=open_blob_store(settings),
                     prefect=PrefectGateway(settings.prefect) if settings.prefect.api_url
                     else None)
    janitor = None if state.blob_store is None else BlobJanitor(
        store=state.blob_store, session_factory=state.session_factory, settings=settings.blobs)
    if janitor is not None:
        janitor.install()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if state.issuer is None:
            state.issuer = await run_in_threadpool(prepare_database, state)
        await state.bus.start()
        job = asyncio.create_task(presence_job(state), name="presence")
        if janitor is not None:
            janitor.start()
        log.info("server_started", database=engine.url.render_as_string(hide_password=True),
                 replica=state.replica, event_bus=type(state.bus).__name__)
        try:
            yield
        finally:
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
            if janitor is not None:
                await janitor.stop()
            try:
                await run_in_threadpool(leave_presence, state)
            except Exception:  # the database may be gone; the other replicas sweep the rows
                log.exception("presence_leave_failed")
            await state.bus.stop()
            if state.prefect is not None:
                await state.prefect.aclose()
            engine.dispose()

    app = FastAPI(title="v6flow server", version=VANTAGE6_VERSION, lifespan=lifespan,
                  docs_url=f"{API_PREFIX}/docs", openapi_url=f"{API_PREFIX}/openapi.json",
                  redoc_url=None)
    app.state.v6flow = state
    install_unit_of_work(ROUTERS)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    app.state.method_table = method_table(ROUTERS, API_PREFIX)
    register_error_handlers(app)
    install_body_limits(app, state, API_PREFIX)
    app.add_middleware(AccessLogMiddleware)
    install_openapi(app)
    install_ui(app)
    return app
