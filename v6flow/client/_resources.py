"""The sub-clients (``client.task``, ``client.run``, ...): defined once for both clients.

Each sub-client lists its operations from :mod:`v6flow.client._ops`. An :class:`operation`
is a descriptor: on a sub-client of the blocking :class:`~v6flow.client.Client` it is a plain
method returning the value, on one of the :class:`~v6flow.client.AsyncClient` a coroutine
method, with the same signature and docstring. :class:`SubClients` creates all of them, so
both clients always have the same sub-clients with the same operations.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, overload

from v6flow.client import _ops as ops
from v6flow.client import _result_ops as result_ops

P = ParamSpec("P")
T = TypeVar("T")


class Blocking:
    """Marker: sub-clients of the blocking client."""


class Asyncio:
    """Marker: sub-clients of the asyncio client."""


Mode = TypeVar("Mode", Blocking, Asyncio)


class Driver(Protocol):
    """What a sub-client needs from its client: something that runs an operation."""

    def drive(self, op: ops.Op[Any], /) -> Any:
        """Run ``op``; the value (blocking) or an awaitable of it (asyncio)."""


class Resource(Generic[Mode]):
    """Base of the sub-clients: holds the client that drives the operations."""

    def __init__(self, client: Driver) -> None:
        self._client = client


class operation(Generic[P, T]):
    """An operation of a sub-client, defined once by its ``_ops`` function."""

    def __init__(self, build: Callable[P, ops.Op[T]]) -> None:
        self._build = build
        self._name = build.__name__
        self.__doc__ = build.__doc__

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._name = f"{owner.__name__}.{name}"

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> operation[P, T]: ...

    @overload
    def __get__(self, obj: Resource[Blocking], owner: type[Any]) -> Callable[P, T]: ...

    @overload
    def __get__(self, obj: Resource[Asyncio], owner: type[Any]
                ) -> Callable[P, Awaitable[T]]: ...

    def __get__(self, obj: Resource[Any] | None, owner: type[Any]) -> Any:
        if obj is None:
            return self
        build, client = self._build, obj._client

        @functools.wraps(build)
        def call(*args: P.args, **kwargs: P.kwargs) -> Any:
            return client.drive(build(*args, **kwargs))

        call.__qualname__ = self._name  # help(): ``Tasks.create``, not ``task_create``
        return call


class Organizations(Resource[Mode]):
    """``/organization``."""

    list = operation(ops.organization_list)
    get = operation(ops.organization_get)
    create = operation(ops.organization_create)


class Collaborations(Resource[Mode]):
    """``/collaboration``."""

    list = operation(ops.collaboration_list)
    get = operation(ops.collaboration_get)
    create = operation(ops.collaboration_create)


class Nodes(Resource[Mode]):
    """``/node``."""

    list = operation(ops.node_list)
    get = operation(ops.node_get)
    create = operation(ops.node_create)


class Users(Resource[Mode]):
    """``/user``."""

    list = operation(ops.user_list)
    get = operation(ops.user_get)
    create = operation(ops.user_create)


class Roles(Resource[Mode]):
    """``/role``."""

    list = operation(ops.role_list)
    get = operation(ops.role_get)


class Tasks(Resource[Mode]):
    """``/task``."""

    create = operation(ops.task_create)
    get = operation(ops.task_get)
    list = operation(ops.task_list)
    status = operation(ops.task_status)
    delete = operation(ops.task_delete)
    kill = operation(ops.task_kill)


class Runs(Resource[Mode]):
    """``/run``."""

    list = operation(ops.run_list)
    get = operation(ops.run_get)


class Results(Resource[Mode]):
    """``/result``."""

    list = operation(result_ops.result_list)
    get = operation(result_ops.result_get)
    value = operation(result_ops.result_value)
    from_task = operation(result_ops.result_from_task)


class SubClients(Generic[Mode]):
    """The sub-clients every client has; a client subclasses this with its mode."""

    organization: Organizations[Mode]
    collaboration: Collaborations[Mode]
    node: Nodes[Mode]
    user: Users[Mode]
    role: Roles[Mode]
    task: Tasks[Mode]
    run: Runs[Mode]
    result: Results[Mode]

    def _attach_sub_clients(self, client: Driver) -> None:
        self.organization = Organizations(client)
        self.collaboration = Collaborations(client)
        self.node = Nodes(client)
        self.user = Users(client)
        self.role = Roles(client)
        self.task = Tasks(client)
        self.run = Runs(client)
        self.result = Results(client)
