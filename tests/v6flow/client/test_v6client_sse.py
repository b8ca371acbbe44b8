"""The I/O-free parts of waiting: the SSE parser and the status-read rules."""

from __future__ import annotations

from v6flow.client import Event, SSEParser
from v6flow.client._watch import TaskWatch, log_lines


def _feed(text: str) -> list[Event]:
    parser = SSEParser()
    events = [parser.feed(line) for line in text.split("\n")]
    return [e for e in events if e is not None]


def test_parser_reads_named_json_events_and_skips_pings() -> None:
    """``event:``/``data:`` blocks become events; ``: ping`` comments do not."""
    # Execute
    events = _feed('event: sync\ndata: {}\n\n: ping\n\nevent: run_update\n'
                   'data: {"task_id": 3, "status": "completed"}\n\n')
    # Assert
    assert events == [Event("sync", {}),
                      Event("run_update", {"task_id": 3, "status": "completed"})]


def test_parser_joins_multiline_data_and_keeps_non_json_text() -> None:
    """Several data lines are joined with newlines; text that is not JSON stays text."""
    # Execute
    events = _feed("data: hello\ndata: world\n\n")
    # Assert
    assert events == [Event("message", "hello\nworld")]


def test_watch_reads_status_on_sync_own_run_updates_and_by_time() -> None:
    """Status reads: after (re)subscribing, on the task's run updates, and every interval."""
    # Prepare
    watch = TaskWatch(task_id=5, poll_interval=10.0)
    watch.checked(100.0)
    # Execute / Assert
    assert watch.needs_check(Event("sync", {}), 100.1)
    assert watch.needs_check(Event("run_update", {"task_id": 5}), 100.1)
    assert not watch.needs_check(Event("run_update", {"task_id": 6}), 100.1)
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
    for event in (Event("run_update", {"task_id": 8, "status": "completed"}),
                  Event("run_update", {"task_id": 7, "status": "active"}),
                  Event("algorithm_log", {"task_id": 7, "lines": ["x"]}), None):
        watch.observe(event)
    assert watch.final_update_seen is False
    watch.observe(Event("run_update", {"task_id": 7, "status": "crashed"}))
    assert watch.final_update_seen is True
