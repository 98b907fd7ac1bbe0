"""Settings for the gunicorn that bench/inbox.py starts: the product's own, plus a query counter.

    DJANGO_SETTINGS_MODULE=inbox_server PYTHONPATH=bench:. gunicorn inboxhub.wsgi

Only the benchmark loads this module, so production code paths never count anything. The
middleware sits outermost: the session read and save are counted with the view's queries.
"""

import time

from django.db import connection

from inboxhub.settings import *  # noqa: F403
from inboxhub.settings import MIDDLEWARE


class CountQueries:
    """Answer with `X-Bench-Queries` (statements run), `X-Bench-DB-ms` (wall time inside them) and
    `X-Bench-CPU-ms` (the worker's own CPU for the request: a sync worker serves one at a time)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        seen = {"queries": 0, "seconds": 0.0}
        cpu = time.process_time()

        def count(execute, sql, params, many, context):
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                seen["queries"] += 1
                seen["seconds"] += time.perf_counter() - started

        with connection.execute_wrapper(count):
            response = self.get_response(request)
        response["X-Bench-Queries"] = str(seen["queries"])
        response["X-Bench-DB-ms"] = f"{seen['seconds'] * 1000:.2f}"
        response["X-Bench-CPU-ms"] = f"{(time.process_time() - cpu) * 1000:.2f}"
        return response


MIDDLEWARE = ["inbox_server.CountQueries", *MIDDLEWARE]
