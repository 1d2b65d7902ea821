"""Buffering of job data records and their delivery in batches from a background thread."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from .serialize import to_jsonable

logger = logging.getLogger(__name__)

RECORD_TYPES = ("items", "requests", "logs", "stats")

MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 1024 * 1024
FLUSH_INTERVAL_SECONDS = 2.0

# Cut batches that wait for the sender thread. When this many wait, add()
# blocks its caller, so a slow API slows the crawl down instead of letting
# memory grow without bound (up to about 64 MiB of JSON waits here).
MAX_PENDING_BATCHES = 64


@dataclass
class Batch:
    """Records of one type, sent in one request under one batch_id."""

    kind: str
    records: List[str]
    batch_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def body(self) -> bytes:
        """Return the ingest request body: {"type", "batch_id", "records"}."""
        head = '{"type": %s, "batch_id": %s, "records": [' % (
            json.dumps(self.kind),
            json.dumps(self.batch_id),
        )
        return (head + ", ".join(self.records) + "]}").encode("ascii")


class BatchSender:
    """Collect records by type and send them in batches from one thread.

    A type's buffer becomes a batch when it reaches max_records records or
    max_bytes of JSON, and every flush_interval seconds. close() sends what
    is left and waits for the thread. send(batch) must return True when the
    server accepted the batch and must do its own retries, because a batch
    it fails is dropped and counted.
    """

    def __init__(
        self,
        send: Callable[[Batch], bool],
        max_records: int = MAX_BATCH_RECORDS,
        max_bytes: int = MAX_BATCH_BYTES,
        flush_interval: float = FLUSH_INTERVAL_SECONDS,
        max_pending: int = MAX_PENDING_BATCHES,
    ):
        self._send = send
        self._max_records = max_records
        self._max_bytes = max_bytes
        self._flush_interval = flush_interval
        self._lock = threading.Lock()
        # A separate lock, because the sender thread must not wait for
        # self._lock while an add() holds it waiting for room in the queue.
        self._counter_lock = threading.Lock()
        self._buffers: Dict[str, List[str]] = {kind: [] for kind in RECORD_TYPES}
        self._buffer_bytes: Dict[str, int] = {kind: 0 for kind in RECORD_TYPES}
        self._pending: "queue.Queue[Optional[Batch]]" = queue.Queue(maxsize=max_pending)
        self._thread = threading.Thread(target=self._run, name="estela-ingest", daemon=True)
        self._closed = False
        self.sent_records: Dict[str, int] = {kind: 0 for kind in RECORD_TYPES}
        self.dropped_records: Dict[str, int] = {kind: 0 for kind in RECORD_TYPES}

    def start(self) -> None:
        self._thread.start()

    def in_sender_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def add(self, kind: str, record) -> None:
        """Buffer one record, converting it to JSON first.

        Safe to call from any thread. A record added after close() is dropped.
        """
        if kind not in self._buffers:
            raise ValueError(f"invalid record type {kind!r}: expected one of {', '.join(RECORD_TYPES)}")
        encoded = json.dumps(to_jsonable(record), allow_nan=False)

        with self._lock:
            if self._closed:
                with self._counter_lock:
                    self.dropped_records[kind] += 1
                return
            buffer = self._buffers[kind]
            buffer.append(encoded)
            self._buffer_bytes[kind] += len(encoded)
            if len(buffer) >= self._max_records or self._buffer_bytes[kind] >= self._max_bytes:
                # Putting under the lock keeps close()'s stop marker last in
                # the queue. A put that waits for room cannot deadlock because
                # _flush_buffers() keeps taking batches until it gets the lock.
                self._pending.put(self._cut(kind))

    def close(self) -> None:
        """Send every buffered record, then stop the thread and wait for it.

        NOTE: there is no deadline. While the API is unreachable, each batch
        left goes through send()'s whole retry schedule (about a minute with
        EstelaAPI), so closing can take about a minute per pending batch.
        """
        with self._lock:
            self._closed = True
            batches = self._cut_all()
        for batch in batches:
            self._pending.put(batch)
        self._pending.put(None)
        self._thread.join()

        dropped = sum(self.dropped_records.values())
        if dropped:
            logger.error("dropped %d job data records that the API did not accept: %s", dropped, self.dropped_records)

    def _cut(self, kind: str) -> Optional[Batch]:
        # Callers hold self._lock.
        records = self._buffers[kind]
        if not records:
            return None
        self._buffers[kind] = []
        self._buffer_bytes[kind] = 0
        return Batch(kind=kind, records=records)

    def _cut_all(self) -> List[Batch]:
        batches = [self._cut(kind) for kind in RECORD_TYPES]
        return [batch for batch in batches if batch is not None]

    def _run(self) -> None:
        next_flush = time.monotonic() + self._flush_interval
        while True:
            try:
                batch = self._pending.get(timeout=max(0.0, next_flush - time.monotonic()))
            except queue.Empty:
                batch = None
            else:
                if batch is None:
                    return
                self._deliver(batch)

            if time.monotonic() >= next_flush:
                if self._flush_buffers():
                    return
                next_flush = time.monotonic() + self._flush_interval

    def _flush_buffers(self) -> bool:
        """Send the waiting batches, then cut and send every buffer.

        Returns True when the stop marker of close() was among the waiting
        batches. Batches cut earlier go first, so records of one type keep
        their order.
        """
        earlier: List[Batch] = []
        stop = False
        while True:
            stop = self._take_waiting(earlier) or stop
            # An add() may hold the lock while it waits for room in the full
            # queue, so keep taking batches until the lock is free.
            if self._lock.acquire(timeout=0.05):
                break
        try:
            cut_now = self._cut_all()
        finally:
            self._lock.release()

        for batch in earlier + cut_now:
            self._deliver(batch)
        return stop

    def _take_waiting(self, batches: List[Batch]) -> bool:
        """Move the waiting batches into batches, returning True at the stop marker."""
        while True:
            try:
                batch = self._pending.get_nowait()
            except queue.Empty:
                return False
            if batch is None:
                return True
            batches.append(batch)

    def _deliver(self, batch: Batch) -> None:
        try:
            accepted = self._send(batch)
        except Exception:
            logger.exception("sending %s batch %s failed", batch.kind, batch.batch_id)
            accepted = False

        counter = self.sent_records if accepted else self.dropped_records
        with self._counter_lock:
            counter[batch.kind] += len(batch.records)
