"""Calls made at the same moment from separate database connections, as two web workers take two clicks."""

import threading
from collections.abc import Callable
from typing import TypeVar

from django.db import connection

T = TypeVar("T")


def at_once(*calls: Callable[[], T], timeout: float = 30) -> list[T | Exception]:
    """Run each call in a thread of its own, released together; what each returned or raised, in order.

    Django gives each thread its own database connection, so the calls meet in
    the database as separate sessions do. Each thread closes its connection
    when done: one left open would keep the test database from being dropped.
    A test that uses this needs `transaction=True` (the threads cannot see the
    test's uncommitted rows).
    """
    start = threading.Barrier(len(calls))
    outcomes: list[T | Exception] = [RuntimeError("the call did not finish in time")] * len(calls)

    def run(index: int, call: Callable[[], T]) -> None:
        try:
            start.wait(timeout)
            outcomes[index] = call()
        except Exception as exc:  # noqa: BLE001 - handed to the test, which says what it expects
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index, call)) for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return outcomes
