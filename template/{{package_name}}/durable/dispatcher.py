"""Publishing committed task records: one background thread per process.

`enqueue()` adds a record to the caller's transaction; once that transaction commits, its
tasks are handed to this thread, which publishes them at once (tasks declared with
`batch=True` after up to `batch_linger_seconds`, several in a message: durable/batch.py)
and, a little later, marks those still unfinished `queued`, in batches. A request therefore
never waits for the broker. When the broker is down the thread leaves the records `pending`
(they are safe in the database) and the relay publishes them when it is back. In the API the
same thread runs the relay every `relay_interval_seconds`.
"""

import atexit
import collections
import logging
import math
import os
import queue
import threading
import time
import uuid
from typing import Final

from celery import Celery
from sqlalchemy import update

from ..config import OutboxSettings, get_settings
from ..core.celery import celery_app
from ..core.database import get_sync_session
from ..core.orm import utcnow
from . import signals
from .batch import publish_tasks
from .models import TaskRecord, TaskRecordStatus
from .relay import Envelope, relay_once

logger = logging.getLogger(__name__)

_STOP: Final = object()
# After a failed publish, fresh tasks go straight to the relay for this long, instead of
# each waiting for the broker's connect timeout in turn.
BROKER_RETRY_SECONDS = 1.0
# At most one `queued` UPDATE per this long: the marks go in batches.
MARK_BATCH_SECONDS = 0.1


class BacklogFullError(RuntimeError):
    """Too many tasks wait for the broker: new ones are refused rather than piled up."""


class Dispatcher:
    def __init__(self, app: Celery, settings: OutboxSettings, *, run_relay: bool) -> None:
        self.app = app
        self.settings = settings
        self.run_relay = run_relay
        self.pid = os.getpid()
        # Records that wait for the broker: pending ones the last relay round counted, plus
        # those this process could not publish since.
        self.unpublished = 0
        self.last_relay_round: float | None = None  # time.monotonic() of the last success
        self._inbox: queue.SimpleQueue[Envelope | object] = queue.SimpleQueue()
        # Published tasks, oldest first, with the time.monotonic() of their publish.
        self._to_mark: collections.deque[tuple[float, uuid.UUID]] = collections.deque()
        self._broker_down_since: float | None = None
        self._next_relay = time.monotonic() if run_relay else math.inf
        self._next_mark = math.inf
        # Tasks waiting to share a message, by name and queue, until `_batch_due`.
        self._batches: dict[tuple[str, str | None], list[Envelope]] = {}
        self._batch_due = math.inf
        self._catch_up = False
        self._thread = threading.Thread(target=self._run, name="durable-dispatcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Publishes what was handed over, flushes the marks, and ends the thread."""
        if self._thread.is_alive():
            self._inbox.put(_STOP)
            self._thread.join(timeout)

    def submit(self, envelope: Envelope) -> None:
        self._inbox.put(envelope)

    def wait_handled(self, timeout: float = 10.0) -> bool:
        """Waits until everything submitted before the call is published or deferred."""
        handled = threading.Event()
        self._inbox.put(handled)
        return handled.wait(timeout)

    def check_accepting(self) -> None:
        if self.unpublished >= self.settings.max_unpublished:
            raise BacklogFullError(
                f"{self.unpublished} tasks wait for the broker (limit "
                f"{self.settings.max_unpublished}); try again later"
            )

    def health(self) -> dict[str, str]:
        checks = {"unpublished": str(self.unpublished)}
        if self._broker_down_since is not None:
            down = time.monotonic() - self._broker_down_since
            checks["publishing"] = f"broker unavailable for {down:.0f} s: tasks wait for the relay"
        else:
            checks["publishing"] = "ok"
        if not self.run_relay:
            checks["relay"] = "off in this process (OUTBOX__RELAY_IN_API=false)"
        elif self.last_relay_round is None:
            checks["relay"] = "starting"
        else:
            age = time.monotonic() - self.last_relay_round
            stalled = age > 3 * self.settings.relay_interval_seconds + 5
            checks["relay"] = f"stalled: last round {age:.0f} s ago" if stalled else "ok"
        return checks

    # --- the thread -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            wait = min(self._next_relay, self._next_mark, self._batch_due) - time.monotonic()
            try:
                item = self._inbox.get(timeout=None if wait == math.inf else max(wait, 0))
            except queue.Empty:
                item = None
            while item is not None:
                if item is _STOP:
                    self._flush_batches()
                    self._flush_marks(everything=True)
                    return
                if isinstance(item, Envelope):
                    if item.batch and self.settings.batch_max_tasks > 1:
                        self._add_to_batch(item)
                    else:
                        self._publish([item])
                elif isinstance(item, threading.Event):
                    self._flush_batches()
                    item.set()
                try:  # everything handed over meanwhile, before the marks and the relay
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    item = None
            now = time.monotonic()
            if now >= self._batch_due:
                self._flush_batches()
            if now >= self._next_mark:
                self._flush_marks()
            if now >= self._next_relay:
                self._relay_round()

    def _add_to_batch(self, envelope: Envelope) -> None:
        if not self._batches:
            self._batch_due = time.monotonic() + self.settings.batch_linger_seconds
        key = (envelope.name, envelope.queue)
        batch = self._batches.setdefault(key, [])
        batch.append(envelope)
        if len(batch) >= self.settings.batch_max_tasks:
            del self._batches[key]
            self._publish(batch)
            if not self._batches:
                self._batch_due = math.inf

    def _flush_batches(self) -> None:
        batches = list(self._batches.values())
        self._batches.clear()
        self._batch_due = math.inf
        for batch in batches:
            self._publish(batch)

    def _publish(self, envelopes: list[Envelope]) -> None:
        """Publishes the tasks, in one message if there are several (one name and queue)."""
        try:
            self._try_publish(envelopes)
        except Exception:  # not the broker's fault: keep publishing the others
            logger.exception(
                "could not publish tasks; the relay will try again",
                extra={"task_id": str(envelopes[0].task_id), "task_name": envelopes[0].name},
            )
            for envelope in envelopes:
                self._defer(envelope)

    def _try_publish(self, envelopes: list[Envelope]) -> None:
        down_since = self._broker_down_since
        if down_since is not None and time.monotonic() - down_since < BROKER_RETRY_SECONDS:
            for envelope in envelopes:
                self._defer(envelope)
            return
        if not publish_tasks(self.app, envelopes, self.settings.publish_timeout_seconds):
            self._broker_down_since = time.monotonic()
            for envelope in envelopes:
                self._defer(envelope)
            return
        if down_since is not None:  # the broker is back: publish what waited, now
            self._broker_down_since = None
            # A relay takes what waited (this process's next round, at once, counts it
            # again; without a relay here, another process's): accept new tasks meanwhile.
            self.unpublished = 0
            self._catch_up = self.run_relay
            self._next_relay = time.monotonic()
        published_at = time.monotonic()
        for envelope in envelopes:
            self._to_mark.append((published_at, envelope.task_id))
            signals.enqueue_outcome.send(sender=envelope.name, outcome="published")
        if self._next_mark == math.inf:
            self._next_mark = published_at + self.settings.mark_queued_interval_seconds

    def _defer(self, envelope: Envelope) -> None:
        self.unpublished += 1
        signals.enqueue_outcome.send(sender=envelope.name, outcome="deferred")

    def _flush_marks(self, *, everything: bool = False) -> None:
        """Marks the tasks published `mark_queued_interval_seconds` ago or earlier. Most
        have finished by then, and the UPDATE skips finished records: no write for them."""
        delay = self.settings.mark_queued_interval_seconds
        now = time.monotonic()
        due = math.inf if everything else now - delay
        batch = []
        while self._to_mark and self._to_mark[0][0] <= due:
            batch.append(self._to_mark.popleft()[1])
        if self._to_mark:
            self._next_mark = max(self._to_mark[0][0] + delay, now + MARK_BATCH_SECONDS)
        else:
            self._next_mark = math.inf
        if batch:
            mark_queued(batch)

    def _relay_round(self) -> None:
        stale_after = 0.0 if self._catch_up else self.settings.stale_after_seconds
        self._catch_up = False
        try:
            result = relay_once(self.app, self.settings, stale_after=stale_after)
        except Exception as exc:
            # The database is down: logged, not alerted (no task failed); next round retries.
            logger.warning("relay round failed", extra={"error": repr(exc)})
        else:
            self.unpublished = result.pending
            self.last_relay_round = time.monotonic()
            if result.broker_unavailable and self._broker_down_since is None:
                self._broker_down_since = time.monotonic()
        self._next_relay = time.monotonic() + self.settings.relay_interval_seconds


def mark_queued(task_ids: list[uuid.UUID]) -> None:
    """Records that the broker has these tasks, in one UPDATE (unless they already ended).

    A mark that never lands leaves its record `pending`: the relay publishes the task again
    after `stale_after_seconds`, a duplicate delivery that the task's record absorbs.
    """
    try:
        with get_sync_session() as session:
            session.execute(
                update(TaskRecord)
                .where(TaskRecord.id.in_(task_ids), TaskRecord.status == TaskRecordStatus.PENDING)
                .values(status=TaskRecordStatus.QUEUED, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            session.commit()
    except Exception as exc:
        logger.warning(
            "could not mark tasks queued; the relay will publish them again",
            extra={"count": len(task_ids), "error": repr(exc)},
        )


_current: Dispatcher | None = None
_current_lock = threading.Lock()


def current() -> Dispatcher:
    """This process's dispatcher: the API's (see `start`), else one that only publishes,
    created on first use (in a worker process or a script)."""
    global _current
    with _current_lock:
        if _current is None or _current.pid != os.getpid():  # none yet, or inherited by fork
            _current = Dispatcher(celery_app, get_settings().outbox, run_relay=False)
            _current.start()
            atexit.register(_current.stop)
        return _current


def start(app: Celery, settings: OutboxSettings) -> Dispatcher:
    """Starts the API process's dispatcher, which runs the relay too (unless turned off)."""
    global _current
    dispatcher = Dispatcher(app, settings, run_relay=settings.relay_in_api)
    dispatcher.start()
    with _current_lock:
        _current = dispatcher
    return dispatcher


def stop() -> None:
    global _current
    with _current_lock:
        dispatcher, _current = _current, None
    if dispatcher is not None:
        dispatcher.stop()
