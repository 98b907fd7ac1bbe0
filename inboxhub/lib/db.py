"""Database calls that survive a connection the server dropped, for long-lived processes."""

import logging
from collections.abc import Callable
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)
T = TypeVar("T")


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
