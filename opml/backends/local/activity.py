"""The workspace's activity log: one line for each change a user made."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from opml.backends.local.store import MetadataStore, utc_now
from opml.records import Activity


def record_activity(connection: sqlite3.Connection, kind: str, message: str) -> None:
    """Append to the log inside the caller's transaction, so it commits with the change."""
    connection.execute(
        "INSERT INTO activity (at, kind, message) VALUES (?, ?, ?)",
        (utc_now(), kind, message),
    )


def recent_activity(store: MetadataStore, limit: int) -> list[Activity]:
    with store.read() as connection:
        rows = connection.execute(
            "SELECT at, kind, message FROM activity ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
    return [Activity(at=datetime.fromisoformat(row["at"]), kind=row["kind"], message=row["message"]) for row in rows]
