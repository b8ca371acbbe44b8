"""The event-stream reader (shared by client and node) and the status-read rules of waiting."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

from tests.fixtures.server import free_port, start_server
from v6flow.client import AsyncClient, Event, SSEParser
from v6flow.client._watch import TaskWatch, log_lines
from v6flow.schemas import AlgorithmLogEvent, KillContainersEvent, RunUpdateEvent, SyncEvent


def _feed(text: str, chunk: int | None = None) -> list[Event]:
    """Events of ``text`` fed to one parser whole, or in pieces of ``chunk`` characters."""
    parser = SSEParser()
    pieces = [text] if chunk is None else [text[i:i + chunk] for i in range(0, len(text), chunk)]
    return [e for piece in pieces for e in parser.feed_text(piece) if e is not None]


def _update(task_id: int, status: str = "active") -> Event:
    return Event("run_update", {"run_id": 1, "task_id": task_id, "organization_id": 2,
                                "status": status})


def test_parser_reads_named_json_events_and_skips_pings() -> None:
    """``event:``/``data:`` blocks become events; ``: ping`` comments do not."""
    # Execute
    events = _feed('event: sync\ndata: {}\n\n: ping\n\nevent: run_update\n'
                   'data: {"task_id": 3, "status": "completed"}\n\n')
    # Assert
    assert events == [Event("sync", {}),
                      Event("run_update", {"task_id": 3, "status": "completed"})]


def test_parser_reports_each_line_of_a_ping_so_readers_keep_time() -> None:
    """A keep-alive completes no event but is reported (None), so a blocking reader wakes."""
    # Execute
    parsed = SSEParser().feed_text(": ping\n\n")
    # Assert
    assert parsed == [None, None]


def test_parser_joins_multiline_data_and_keeps_non_json_text() -> None:
    """Several data lines are joined with newlines; text that is not JSON stays text."""
    # Execute
    events = _feed("data: hello\ndata: world\n\n")
    # Assert
    assert events == [Event("message", "hello\nworld")]


def test_parser_reads_multiline_json_split_anywhere_with_any_line_end() -> None:
    """JSON over several data lines, CRLF/CR/LF endings and chunks cut mid-line (even between
    CR and LF) give the same events as the whole text."""
    # Prepare
    text = ('event: algorithm_log\r\ndata: {"run_id": 4, "task_id": 5,\r\n'
            'data:  "lines": ["a", "b"]}\r\n\r\n: ping\r\rid: 7\nevent: sync\ndata: {}\n\n')
    whole = _feed(text)
    # Execute
    pieces = [_feed(text, chunk) for chunk in (1, 2, 3, 7, 50)]
    # Assert
    assert whole == [Event("algorithm_log", {"run_id": 4, "task_id": 5, "lines": ["a", "b"]}),
                     Event("sync", {})]
    assert all(p == whole for p in pieces)


def test_events_carry_their_typed_payload() -> None:
    """Each known event name reads into its model; unknown names have no payload."""
    # Execute
    log = Event("algorithm_log", {"run_id": 1, "task_id": 2, "log": "x\ny"}).payload
    kill = Event("kill_containers", {"kill_list": [{"task_id": 1, "run_id": 2,
                                                    "organization_id": 3}],
                                     "collaboration_id": 9}).payload
    # Assert
    assert isinstance(Event("sync").payload, SyncEvent)
    assert isinstance(_update(5).payload, RunUpdateEvent)
    assert isinstance(log, AlgorithmLogEvent) and log.all_lines == ["x", "y"]
    assert isinstance(kill, KillContainersEvent) and kill.kill_list[0].run_id == 2
    assert Event("something_new", {"a": 1}).payload is None


def test_watch_reads_status_on_sync_own_finished_runs_and_by_time() -> None:
    """Status reads: after (re)subscribing, when a run of the task finished, and every
    interval; a run of the task that only started cannot finish it."""
    # Prepare
    watch = TaskWatch(task_id=5, poll_interval=10.0)
    watch.checked(100.0)
    # Execute / Assert
    assert watch.needs_check(Event("sync", {}), 100.1)
    assert watch.needs_check(_update(5, "completed"), 100.1)
    assert watch.needs_check(_update(5, "failed"), 100.1)
    assert not watch.needs_check(_update(5, "active"), 100.1)
    assert not watch.needs_check(_update(6, "completed"), 100.1)
    assert not watch.needs_check(None, 105.0)
    assert watch.needs_check(None, 110.0)


def test_log_lines_only_for_the_watched_task() -> None:
    """algorithm_log events of other tasks are ignored."""
    # Prepare
    mine = Event("algorithm_log", {"task_id": 5, "run_id": 9, "organization_id": 2,
                                   "lines": ["a", "b"]})
    other = Event("algorithm_log", {"task_id": 6, "run_id": 1, "lines": ["x"]})
    # Execute
    batch = log_lines(mine, 5)
    # Assert
    assert batch is not None and batch.lines == ("a", "b") and batch.run_id == 9
    assert log_lines(other, 5) is None


def test_watch_notes_when_a_run_of_its_task_was_pushed_as_finished() -> None:
    """Only a finished run_update of the watched task marks its log lines as complete."""
    watch = TaskWatch(7)
    for event in (_update(8, "completed"), _update(7, "active"),
                  Event("algorithm_log", {"task_id": 7, "run_id": 1, "lines": ["x"]}), None):
        watch.observe(event)
    assert watch.final_update_seen is False
    watch.observe(_update(7, "crashed"))
    assert watch.final_update_seen is True


async def test_event_stream_resubscribes_after_a_server_restart(tmp_path: Path) -> None:
    """A subscription outlives a server restart: the reader reconnects and gets ``sync`` again."""
    # Prepare: a server of our own, subscribed to
    port, password = free_port(), secrets.token_urlsafe(12)
    database_url = f"sqlite:///{tmp_path}/server.sqlite"
    server: Any = start_server(database_url=database_url, root_password=password,
                               log_dir=tmp_path, port=port)
    try:
        async with AsyncClient(server.url, username="root", password=password) as client, \
                client.events() as stream:
            # Execute: restart the server on the same port
            await asyncio.to_thread(server.stop)
            server = await asyncio.to_thread(
                start_server, database_url=database_url, root_password=password,
                log_dir=tmp_path, port=port)
            event = await stream.next(timeout=30)
            me = await client.whoami()
            # Assert
            assert event is not None and event.name == "sync"
            assert me.username == "root"
    finally:
        server.stop()
