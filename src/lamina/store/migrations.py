"""The SQLite schema, as an ordered list of migrations.

`PRAGMA user_version` is the number of migrations applied. Append new migrations; never edit
one that has shipped, because databases in the field already ran it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lamina.core.errors import ServiceException

MIGRATIONS: tuple[str, ...] = (
    # 1: functions, layers, the asynchronous invocation queue, logs
    """
    CREATE TABLE functions (
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        runtime TEXT NOT NULL,
        handler TEXT NOT NULL,
        code_sha256 TEXT NOT NULL,
        code_size INTEGER NOT NULL,
        memory_size INTEGER NOT NULL,
        timeout INTEGER NOT NULL,
        environment TEXT NOT NULL,
        layers TEXT NOT NULL,
        description TEXT NOT NULL,
        reserved_concurrency INTEGER,
        revision_id TEXT NOT NULL,
        last_modified TEXT NOT NULL,
        PRIMARY KEY (name, version)
    );

    CREATE TABLE layer_versions (
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        code_sha256 TEXT NOT NULL,
        code_size INTEGER NOT NULL,
        description TEXT NOT NULL,
        compatible_runtimes TEXT NOT NULL,
        created_date TEXT NOT NULL,
        PRIMARY KEY (name, version)
    );

    CREATE TABLE events (
        id TEXT PRIMARY KEY,
        function_name TEXT NOT NULL,
        qualifier TEXT NOT NULL,
        payload BLOB NOT NULL,
        enqueued_at REAL NOT NULL,
        attempts INTEGER NOT NULL,
        status TEXT NOT NULL
            CHECK (status IN ('pending', 'running', 'succeeded', 'failed'))
    );
    CREATE INDEX events_by_status ON events (status, enqueued_at, id);

    -- AUTOINCREMENT so that ids are never reused once old logs are deleted: readers page
    -- with after_id and must never see an id go backwards.
    CREATE TABLE logs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        function_name TEXT NOT NULL,
        stream TEXT NOT NULL,
        timestamp_ms INTEGER NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX logs_by_function_id ON logs (function_name, id);
    CREATE INDEX logs_by_function_time ON logs (function_name, timestamp_ms);
    """,
    # 2: the parameter store (SSM data model); SecureString values are stored encrypted
    """
    CREATE TABLE parameters (
        name TEXT PRIMARY KEY,
        type TEXT NOT NULL CHECK (type IN ('String', 'StringList', 'SecureString')),
        version INTEGER NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        key_id TEXT,
        allowed_pattern TEXT,
        tier TEXT NOT NULL DEFAULT 'Standard',
        data_type TEXT NOT NULL DEFAULT 'text',
        last_modified REAL NOT NULL
    );

    CREATE TABLE parameter_versions (
        name TEXT NOT NULL REFERENCES parameters (name) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        type TEXT NOT NULL,
        value BLOB NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        key_id TEXT,
        allowed_pattern TEXT,
        labels TEXT NOT NULL DEFAULT '[]',
        last_modified REAL NOT NULL,
        PRIMARY KEY (name, version)
    );
    """,
    # 3: aliases, deployments of services/stages, and which deployment is live
    """
    -- The last version number each function published: numbers are never reused, even
    -- after the newest version was deleted (as on Lambda).
    CREATE TABLE version_counters (
        function_name TEXT PRIMARY KEY,
        last_version INTEGER NOT NULL
    );

    CREATE TABLE aliases (
        function_name TEXT NOT NULL,
        name TEXT NOT NULL,
        function_version TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        routing TEXT NOT NULL DEFAULT '{}',
        revision_id TEXT NOT NULL,
        PRIMARY KEY (function_name, name)
    );

    CREATE TABLE deployments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        service TEXT NOT NULL,
        stage TEXT NOT NULL,
        region TEXT NOT NULL,
        created REAL NOT NULL,
        spec TEXT NOT NULL,
        -- [{key, name, version, changed}]: what this deployment made live
        functions TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX deployments_by_stack ON deployments (service, stage, id);

    CREATE TABLE stacks (
        service TEXT NOT NULL,
        stage TEXT NOT NULL,
        deployment_id INTEGER NOT NULL REFERENCES deployments (id),
        updated REAL NOT NULL,
        PRIMARY KEY (service, stage)
    );
    """,
    # 4: the async retry contract (event state, destinations), schedules, event invoke configs
    """
    -- SQLite cannot widen a CHECK constraint in place, so the events table is rebuilt.
    CREATE TABLE events_v4 (
        id TEXT PRIMARY KEY,
        function_name TEXT NOT NULL,
        qualifier TEXT NOT NULL,
        payload BLOB NOT NULL,
        enqueued_at REAL NOT NULL,
        attempts INTEGER NOT NULL,
        status TEXT NOT NULL
            CHECK (status IN ('pending', 'running', 'delivering', 'succeeded', 'failed', 'dead')),
        -- epoch seconds before which the event is not claimed (retry delay, throttle backoff)
        not_before REAL NOT NULL DEFAULT 0,
        -- consecutive throttles/platform errors, which grow the backoff but are not attempts
        throttles INTEGER NOT NULL DEFAULT 0,
        updated_at REAL NOT NULL DEFAULT 0,
        -- JSON: the last attempt's outcome, then the destination record while delivering
        detail TEXT NOT NULL DEFAULT '{}'
    );
    INSERT INTO events_v4 (id, function_name, qualifier, payload, enqueued_at, attempts, status,
                           updated_at)
        SELECT id, function_name, qualifier, payload, enqueued_at, attempts, status, enqueued_at
        FROM events;
    DROP TABLE events;
    ALTER TABLE events_v4 RENAME TO events;
    CREATE INDEX events_by_status ON events (status, not_before, enqueued_at, id);
    CREATE INDEX events_by_function ON events (function_name, enqueued_at, id);

    -- Per function and qualifier ('' = every qualifier without its own): maximumRetryAttempts,
    -- maximumEventAge, destinations, as JSON. Written by deploys and the event-invoke-config API.
    CREATE TABLE event_invoke_configs (
        function_name TEXT NOT NULL,
        qualifier TEXT NOT NULL,
        config TEXT NOT NULL,
        last_modified REAL NOT NULL,
        PRIMARY KEY (function_name, qualifier)
    );

    CREATE TABLE schedules (
        rule TEXT PRIMARY KEY,
        service TEXT NOT NULL,
        stage TEXT NOT NULL,
        function_name TEXT NOT NULL,
        qualifier TEXT NOT NULL,
        expression TEXT NOT NULL,
        timezone TEXT NOT NULL,
        enabled INTEGER NOT NULL,
        input TEXT,
        input_path TEXT,
        description TEXT NOT NULL DEFAULT '',
        -- the due time (epoch seconds) of the last firing handed to the async queue; kept
        -- across redeploys of the same rule so a restart neither repeats nor bursts firings
        last_fired REAL,
        created REAL NOT NULL
    );
    CREATE INDEX schedules_by_stack ON schedules (service, stage);
    """,
    # 5: the queue service (SQS semantics) and its sqs event source mappings
    """
    -- attributes: SQS queue attributes (JSON, strings) that differ from the defaults.
    -- service/stage: the stack that declared the queue; NULL when created through the API.
    CREATE TABLE queues (
        name TEXT PRIMARY KEY,
        attributes TEXT NOT NULL,
        service TEXT,
        stage TEXT,
        created REAL NOT NULL,
        last_modified REAL NOT NULL
    );

    -- seq orders the queue (AUTOINCREMENT: never reused, so a FIFO SequenceNumber only grows).
    -- receipt is the token of the newest receive; visible_at is when it may be received
    -- (again). A message is durable once its INSERT commits: SendMessage answers after that.
    CREATE TABLE queue_messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL REFERENCES queues (name) ON DELETE CASCADE,
        id TEXT NOT NULL,
        body TEXT NOT NULL,
        attributes TEXT NOT NULL DEFAULT '{}',
        system TEXT NOT NULL DEFAULT '{}',
        sent_at REAL NOT NULL,
        visible_at REAL NOT NULL,
        receive_count INTEGER NOT NULL DEFAULT 0,
        first_receive_at REAL,
        receipt TEXT,
        group_id TEXT,
        dedup_id TEXT
    );
    CREATE INDEX queue_messages_by_visibility ON queue_messages (queue, visible_at, seq);
    CREATE INDEX queue_messages_by_id ON queue_messages (queue, id);
    CREATE INDEX queue_messages_by_group ON queue_messages (queue, group_id, seq);

    -- FIFO deduplication ids accepted in the last five minutes, deleted messages included.
    CREATE TABLE queue_dedup (
        queue TEXT NOT NULL REFERENCES queues (name) ON DELETE CASCADE,
        dedup_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        expires REAL NOT NULL,
        PRIMARY KEY (queue, dedup_id)
    );

    -- A stack's sqs events; queue is a name (the queue may not exist yet).
    CREATE TABLE event_source_mappings (
        uuid TEXT PRIMARY KEY,
        service TEXT NOT NULL,
        stage TEXT NOT NULL,
        function_name TEXT NOT NULL,
        qualifier TEXT,
        queue TEXT NOT NULL,
        config TEXT NOT NULL,
        created REAL NOT NULL
    );
    CREATE INDEX event_source_mappings_by_stack ON event_source_mappings (service, stage);
    """,
    # 6: provisioned concurrency configurations
    """
    -- qualifier: a published version number or an alias name (never $LATEST). Deleting the
    -- function, the version or the alias deletes its configuration (store/versions.py).
    CREATE TABLE provisioned_concurrency (
        function_name TEXT NOT NULL,
        qualifier TEXT NOT NULL CHECK (qualifier != '$LATEST'),
        requested INTEGER NOT NULL CHECK (requested > 0),
        last_modified TEXT NOT NULL,
        PRIMARY KEY (function_name, qualifier)
    );
    """,
)


class SchemaTooNewError(ServiceException):
    """The database was written by a newer Lamina; downgrading would corrupt it."""


@contextmanager
def transaction(conn: sqlite3.Connection, *, immediate: bool = True) -> Iterator[None]:
    """One transaction on an autocommit (isolation_level=None) connection.

    IMMEDIATE takes the write lock up front, so a read-then-write (the next layer version,
    the schema version) cannot race another process between its read and its write.
    """
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN DEFERRED")
    try:
        yield
    except BaseException:
        # SQLite rolls back by itself on some errors (SQLITE_FULL, ...); a second ROLLBACK
        # would then fail and hide the original error.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Apply the migrations `conn` has not seen yet, each in its own transaction.

    Returns the final schema version.
    """
    known = len(MIGRATIONS)
    for target, script in enumerate(MIGRATIONS, start=1):
        with transaction(conn):
            current = user_version(conn)
            if current > known:
                raise SchemaTooNewError(
                    f"{path}: schema version {current} is newer than this Lamina "
                    f"(knows {known}); upgrade Lamina"
                )
            if current >= target:
                continue
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {target}")
    return user_version(conn)


def user_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def _statements(script: str) -> Iterator[str]:
    # executescript() commits before it runs, so it cannot share our transaction; split the
    # script into statements instead. complete_statement() understands triggers' BEGIN..END.
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    leftover = [ln for ln in pending.splitlines() if ln.strip() and not ln.strip().startswith("--")]
    if leftover:
        raise ValueError(f"migration ends with an incomplete statement: {pending.strip()!r}")
