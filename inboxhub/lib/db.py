"""Database helpers: calls that survive a dropped connection; row locks read right; datetimes for raw SQL."""

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connection
from django.db.models import Model, QuerySet

logger = logging.getLogger(__name__)
T = TypeVar("T")
M = TypeVar("M", bound=Model)


def on_live_connection(func: Callable[[], T]) -> T:
    """Run a database call; when the server had dropped the connection, once more on a fresh one.

    Replaces a health check before every command (CONN_HEALTH_CHECKS after
    close_old_connections), which costs a round trip each time: checking only
    after a failure costs nothing while all is well. A timeout, a refused
    connection or any error on a working connection is raised as it is.
    Retrying an INSERT whose COMMIT was lost with the connection may store a
    message twice; processing dedupes it by Message-ID (G4), as it does a
    sender's retry after 451.
    """
    before = connection.connection
    try:
        return func()
    except (OperationalError, InterfaceError):
        # No connection before the call: connecting failed, and at once again would too.
        if before is None or connection.in_atomic_block:
            raise
        # A transaction whose rollback failed has replaced the broken connection already.
        if connection.connection is before:
            if connection.is_usable():
                raise
            connection.close()
        logger.warning("the database connection was lost; trying once more on a new one")
    return func()


def lock_rows(rows: QuerySet[M], *, limit: int | None = None, skip_locked: bool = False) -> list[M]:
    """Lock the rows `rows` selects (in its order, at most `limit`), then read them with their relations.

    `select_for_update(of=("self",))` beside `select_related` goes wrong after a wait: PostgreSQL
    re-reads the locked row once the other transaction commits, but not the rows joined to it, so a
    foreign key just changed comes back with the related row it had before (an assignee of None
    beside a set assignee_id). Locking alone and reading in a new statement sees both as committed.
    """
    locking = rows.select_for_update(of=("self",), skip_locked=skip_locked).values_list("pk", flat=True)
    pks = list(locking[:limit] if limit is not None else locking)
    if not pks:
        return []
    by_pk = {row.pk: row for row in rows.filter(pk__in=pks)}
    return [by_pk[pk] for pk in pks if pk in by_pk]


def lock_row(rows: QuerySet[M]) -> M | None:
    """The first row `rows` selects, locked and read with its relations (see `lock_rows`); None if none."""
    found = lock_rows(rows, limit=1)
    return found[0] if found else None


def sql_datetime(moment: datetime) -> datetime | str:
    """`moment` as a parameter of hand-written SQL, in the form the ORM writes it.

    PostgreSQL takes it as it is. SQLite (make run's default) keeps datetimes as
    text, which the ORM writes in UTC without an offset and compares as text: the
    driver's own form ('…+00:00') would never equal what a lookup of the ORM asks
    for, so a row written by hand would not be found by its time.
    """
    return connection.ops.adapt_datetimefield_value(moment)
