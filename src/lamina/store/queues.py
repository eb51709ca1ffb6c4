"""`SqliteQueueStore`: the queue service's queues, messages and event source mappings, on
the `SqliteStore`'s file (migration 5).

Every method is one transaction on the shared connection. A receive picks messages and
marks them received in the same IMMEDIATE transaction, so two receivers never get the same
delivery; a send commits before the caller acknowledges it, so a killed process loses no
acknowledged message (WAL: a committed transaction survives the process).
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import orjson

from lamina.core.queue_messages import Message, MessageAttribute
from lamina.core.queues import (
    DeleteOutcome,
    EventSourceMapping,
    Queue,
    QueueCounts,
    VisibilityOutcome,
    settings_from_store,
    stored_attributes,
)
from lamina.store.sqlite import SqliteStore, _json

_QUEUE = "name, attributes, service, stage, created, last_modified"
_MESSAGE = (
    "seq, queue, id, body, attributes, system, sent_at, visible_at, receive_count, "
    "first_receive_at, receipt, group_id, dedup_id"
)
_MAPPING = "uuid, service, stage, function_name, qualifier, queue, config, created"


class SqliteQueueStore:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def __repr__(self) -> str:
        return f"<SqliteQueueStore {self._store.path}>"

    # queues

    def get_queue(self, name: str) -> Queue | None:
        with self._store.transaction(write=False) as conn:
            return _get_queue(conn, name)

    def list_queues(self, prefix: str = "") -> list[Queue]:
        with self._store.transaction(write=False) as conn:
            rows = conn.execute(
                f"SELECT {_QUEUE} FROM queues WHERE substr(name, 1, ?) = ? ORDER BY name",
                (len(prefix), prefix),
            ).fetchall()
        return [_queue(row) for row in rows]

    def create_queue(self, queue: Queue) -> Queue:
        """Insert `queue` unless one of that name exists; return the stored one."""
        with self._store.transaction() as conn:
            existing = _get_queue(conn, queue.name)
            if existing is not None:
                return existing
            _put_queue(conn, queue)
        return queue

    def update_queue(self, queue: Queue) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE queues SET attributes = ?, last_modified = ? WHERE name = ?",
                (_json(stored_attributes(queue.settings)), queue.last_modified, queue.name),
            )

    def delete_queue(self, name: str) -> bool:
        with self._store.transaction() as conn:
            return conn.execute("DELETE FROM queues WHERE name = ?", (name,)).rowcount > 0

    def declare_queues(self, service: str, stage: str, queues: Sequence[Queue]) -> list[str]:
        """Make `queues` the stack's: create or update each (keeping its messages), delete
        the stack's other queues. Returns the names deleted."""
        names = {q.name for q in queues}
        with self._store.transaction() as conn:
            owned = conn.execute(
                "SELECT name FROM queues WHERE service = ? AND stage = ?", (service, stage)
            ).fetchall()
            gone = sorted(row[0] for row in owned if row[0] not in names)
            for name in gone:
                conn.execute("DELETE FROM queues WHERE name = ?", (name,))
            for queue in queues:
                existing = _get_queue(conn, queue.name)
                if existing is None:
                    _put_queue(conn, queue)
                    continue
                conn.execute(
                    "UPDATE queues SET attributes = ?, service = ?, stage = ?, "
                    "last_modified = ? WHERE name = ?",
                    (
                        _json(stored_attributes(queue.settings)),
                        service,
                        stage,
                        queue.last_modified,
                        queue.name,
                    ),
                )
        return gone

    # messages

    def send(
        self, queue: str, messages: Sequence[Message], dedup_expires: float, now: float
    ) -> list[Message]:
        """Enqueue `messages` (their `seq` is assigned here). A FIFO message whose
        deduplication id was accepted before `now` minus the window is not enqueued again:
        the original's id and sequence number come back instead."""
        stored = []
        with self._store.transaction() as conn:
            if any(m.dedup_id for m in messages):
                conn.execute(
                    "DELETE FROM queue_dedup WHERE queue = ? AND expires <= ?", (queue, now)
                )
            for message in messages:
                if message.dedup_id is not None:
                    row = conn.execute(
                        "SELECT message_id, seq FROM queue_dedup WHERE queue = ? AND dedup_id = ?",
                        (queue, message.dedup_id),
                    ).fetchone()
                    if row is not None:
                        stored.append(replace(message, id=row[0], seq=row[1]))
                        continue
                seq = _insert_message(conn, message)
                if message.dedup_id is not None:
                    conn.execute(
                        "INSERT INTO queue_dedup (queue, dedup_id, message_id, seq, expires) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (queue, message.dedup_id, message.id, seq, dedup_expires),
                    )
                stored.append(replace(message, seq=seq))
        return stored

    def receive(
        self,
        queue: Queue,
        limit: int,
        visibility: int,
        now: float,
        token: Callable[[], str],
        source_arn: str,
    ) -> tuple[list[Message], int]:
        """Receive up to `limit` messages: each gets a new receipt `token()`, one more
        receive and `visibility` seconds of invisibility. A message already received
        `maxReceiveCount` times moves to the dead-letter queue instead (when that queue
        exists). Returns the messages and how many moved."""
        settings = queue.settings
        oldest = now - settings.message_retention
        received: list[Message] = []
        moved = 0
        with self._store.transaction() as conn:
            dlq = settings.redrive
            if dlq is not None and _get_queue(conn, dlq.dead_letter_queue) is None:
                dlq = None  # never drop a message for want of its target
            while len(received) < limit:
                rows = _receivable(conn, queue.name, settings.fifo, now, oldest, limit)
                candidates = [_message(row) for row in rows]
                if not candidates:
                    break
                for message in candidates:
                    if dlq is not None and message.receive_count >= dlq.max_receive_count:
                        _move(conn, message, dlq.dead_letter_queue, source_arn, now)
                        moved += 1
                        continue
                    received.append(_mark_received(conn, message, visibility, now, token()))
                    if len(received) >= limit:
                        break
                if dlq is None or len(candidates) < limit:
                    break  # without moves, one pass took all there was
        return received, moved

    def delete_message(self, queue: str, message_id: str, token: str) -> DeleteOutcome:
        with self._store.transaction() as conn:
            row = conn.execute(
                "SELECT seq, receipt FROM queue_messages WHERE queue = ? AND id = ?",
                (queue, message_id),
            ).fetchone()
            if row is None:
                return "gone"
            if row[1] != token:
                return "stale"
            conn.execute("DELETE FROM queue_messages WHERE seq = ?", (row[0],))
        return "deleted"

    def change_visibility(
        self, queue: str, message_id: str, token: str, visible_at: float, now: float
    ) -> VisibilityOutcome:
        with self._store.transaction() as conn:
            row = conn.execute(
                "SELECT seq, receipt, visible_at FROM queue_messages WHERE queue = ? AND id = ?",
                (queue, message_id),
            ).fetchone()
            if row is None:
                return "gone"
            if row[1] != token:
                return "stale"
            if row[2] <= now:
                return "not_in_flight"
            conn.execute(
                "UPDATE queue_messages SET visible_at = ? WHERE seq = ?", (visible_at, row[0])
            )
        return "changed"

    def purge(self, queue: str) -> int:
        with self._store.transaction() as conn:
            return conn.execute("DELETE FROM queue_messages WHERE queue = ?", (queue,)).rowcount

    def counts(self, queue: Queue, now: float) -> QueueCounts:
        oldest = now - queue.settings.message_retention
        with self._store.transaction(write=False) as conn:
            row = conn.execute(
                "SELECT COALESCE(SUM(visible_at <= :now), 0), "
                "COALESCE(SUM(visible_at > :now AND receive_count > 0), 0), "
                "COALESCE(SUM(visible_at > :now AND receive_count = 0), 0) "
                "FROM queue_messages WHERE queue = :queue AND sent_at > :oldest",
                {"now": now, "queue": queue.name, "oldest": oldest},
            ).fetchone()
        return QueueCounts(int(row[0]), int(row[1]), int(row[2]))

    def next_visible(self, queue: str, now: float) -> float | None:
        """When the next message that is invisible now becomes visible, if any is."""
        with self._store.transaction(write=False) as conn:
            row = conn.execute(
                "SELECT MIN(visible_at) FROM queue_messages WHERE queue = ? AND visible_at > ?",
                (queue, now),
            ).fetchone()
        return float(row[0]) if row[0] is not None else None

    def expire(self, now: float) -> int:
        """Delete messages past their queue's retention and expired deduplication ids."""
        deleted = 0
        with self._store.transaction() as conn:
            for queue in [_queue(r) for r in conn.execute(f"SELECT {_QUEUE} FROM queues")]:
                deleted += conn.execute(
                    "DELETE FROM queue_messages WHERE queue = ? AND sent_at <= ?",
                    (queue.name, now - queue.settings.message_retention),
                ).rowcount
            conn.execute("DELETE FROM queue_dedup WHERE expires <= ?", (now,))
        return deleted

    # event source mappings

    def replace_mappings(
        self, service: str, stage: str, mappings: Sequence[EventSourceMapping], now: float
    ) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "DELETE FROM event_source_mappings WHERE service = ? AND stage = ?",
                (service, stage),
            )
            conn.executemany(
                f"INSERT INTO event_source_mappings ({_MAPPING}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        m.uuid,
                        m.service,
                        m.stage,
                        m.function_name,
                        m.qualifier,
                        m.queue,
                        _json(_mapping_config(m)),
                        now,
                    )
                    for m in mappings
                ),
            )

    def list_mappings(self) -> list[EventSourceMapping]:
        with self._store.transaction(write=False) as conn:
            rows = conn.execute(
                f"SELECT {_MAPPING} FROM event_source_mappings ORDER BY service, stage, uuid"
            ).fetchall()
        return [_mapping(row) for row in rows]


# --- rows ------------------------------------------------------------------------------------


def _get_queue(conn: sqlite3.Connection, name: str) -> Queue | None:
    row = conn.execute(f"SELECT {_QUEUE} FROM queues WHERE name = ?", (name,)).fetchone()
    return _queue(row) if row else None


def _put_queue(conn: sqlite3.Connection, queue: Queue) -> None:
    conn.execute(
        f"INSERT INTO queues ({_QUEUE}) VALUES (?, ?, ?, ?, ?, ?)",
        (
            queue.name,
            _json(stored_attributes(queue.settings)),
            queue.service,
            queue.stage,
            queue.created,
            queue.last_modified,
        ),
    )


def _queue(row: sqlite3.Row) -> Queue:
    return Queue(
        name=row["name"],
        settings=settings_from_store(orjson.loads(row["attributes"])),
        created=row["created"],
        last_modified=row["last_modified"],
        service=row["service"],
        stage=row["stage"],
    )


def _receivable(
    conn: sqlite3.Connection, queue: str, fifo: bool, now: float, oldest: float, limit: int
) -> list[sqlite3.Row]:
    # A FIFO group is locked while one of its messages is in flight, and a message waits
    # for every earlier one of its group: that is what keeps a group in order.
    fifo_clause = (
        "AND NOT EXISTS (SELECT 1 FROM queue_messages o WHERE o.queue = m.queue "
        "AND o.group_id = m.group_id AND o.visible_at > :now "
        "AND (o.receive_count > 0 OR o.seq < m.seq)) "
        if fifo
        else ""
    )
    return conn.execute(
        f"SELECT {_MESSAGE} FROM queue_messages m WHERE m.queue = :queue "
        "AND m.visible_at <= :now AND m.sent_at > :oldest "
        f"{fifo_clause}ORDER BY m.seq LIMIT :limit",
        {"queue": queue, "now": now, "oldest": oldest, "limit": limit},
    ).fetchall()


def _mark_received(
    conn: sqlite3.Connection, message: Message, visibility: int, now: float, token: str
) -> Message:
    first = message.first_receive_at if message.first_receive_at is not None else now
    received = replace(
        message,
        receive_count=message.receive_count + 1,
        visible_at=now + visibility,
        first_receive_at=first,
        receipt=token,
    )
    conn.execute(
        "UPDATE queue_messages SET receive_count = ?, visible_at = ?, first_receive_at = ?, "
        "receipt = ? WHERE seq = ?",
        (received.receive_count, received.visible_at, first, token, message.seq),
    )
    return received


def _move(
    conn: sqlite3.Connection, message: Message, target: str, source_arn: str, now: float
) -> None:
    """Redrive: the message goes to the dead-letter queue with its id, body, attributes and
    original sent time (retention counts from it, as on SQS), never received there yet."""
    system = {**message.system, "DeadLetterQueueSourceArn": source_arn}
    moved = replace(
        message,
        queue=target,
        system=system,
        visible_at=now,
        receive_count=0,
        first_receive_at=None,
        receipt=None,
    )
    conn.execute("DELETE FROM queue_messages WHERE seq = ?", (message.seq,))
    _insert_message(conn, moved)


def _insert_message(conn: sqlite3.Connection, m: Message) -> int:
    cursor = conn.execute(
        "INSERT INTO queue_messages (queue, id, body, attributes, system, sent_at, visible_at, "
        "receive_count, first_receive_at, receipt, group_id, dedup_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            m.queue,
            m.id,
            m.body,
            _json(_attributes_json(m.attributes)),
            _json(m.system),
            m.sent_at,
            m.visible_at,
            m.receive_count,
            m.first_receive_at,
            m.receipt,
            m.group_id,
            m.dedup_id,
        ),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _message(row: sqlite3.Row) -> Message:
    fields = dict(row)
    fields["attributes"] = _attributes(orjson.loads(fields["attributes"]))
    fields["system"] = orjson.loads(fields["system"])
    return Message(**fields)


def _attributes_json(attributes: dict[str, MessageAttribute]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, a in attributes.items():
        item: dict[str, str] = {"t": a.data_type}
        if a.string_value is not None:
            item["s"] = a.string_value
        if a.binary_value is not None:
            item["b"] = base64.b64encode(a.binary_value).decode()
        out[name] = item
    return out


def _attributes(data: dict[str, Any]) -> dict[str, MessageAttribute]:
    return {
        name: MessageAttribute(
            data_type=item["t"],
            string_value=item.get("s"),
            binary_value=base64.b64decode(item["b"]) if "b" in item else None,
        )
        for name, item in data.items()
    }


def _mapping_config(m: EventSourceMapping) -> dict[str, Any]:
    return {
        "batch_size": m.batch_size,
        "maximum_batching_window": m.maximum_batching_window,
        "report_batch_item_failures": m.report_batch_item_failures,
        "enabled": m.enabled,
        "maximum_concurrency": m.maximum_concurrency,
    }


def _mapping(row: sqlite3.Row) -> EventSourceMapping:
    config = orjson.loads(row["config"])
    return EventSourceMapping(
        uuid=row["uuid"],
        service=row["service"],
        stage=row["stage"],
        function_name=row["function_name"],
        qualifier=row["qualifier"],
        queue=row["queue"],
        **config,
    )
