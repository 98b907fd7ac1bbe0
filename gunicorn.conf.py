"""gunicorn's settings for every InboxHub web process (gunicorn reads ./gunicorn.conf.py on its own).

The access log keeps each request's path with its link tokens masked (issue 16), and the web server
refuses to start without SECRET_KEY before it opens its port. The app is loaded once, in the master,
before it forks its workers, so they share its memory (issue 18).
"""

import gc
import os
import sys

from django.db import connections
from gunicorn.glogging import Logger

from inboxhub.lib.log_tokens import mask_tokens
from inboxhub.lib.secret_key import MISSING, secret_key_is_set


class TokenMaskingLogger(Logger):
    """Every field of the access log (request line, path, query, Referer…) with its tokens masked."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        return {
            name: mask_tokens(value) if isinstance(value, str) else value for name, value in atoms.items()
        }


logger_class = TokenMaskingLogger
# Django and the app are imported by the master; each worker is a fork of it and shares those pages
# (~60 MiB a worker) until it writes to them.
preload_app = True

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inboxhub.settings")  # read lazily, from here on
# Here rather than in on_starting, which gunicorn calls after it has loaded (preloaded) the app.
if not secret_key_is_set():
    sys.exit(f"Error: {MISSING}")  # as gunicorn prints a RuntimeError of a hook; exit code 1


def when_ready(server) -> None:
    """In the master, right before it forks the first workers."""
    connections.close_all()  # a worker must never inherit the master's connection (none is expected)
    # Objects of the loaded app move out of the collector's reach: a worker's collections would
    # otherwise write to every page holding one, and copy it.
    gc.collect()
    gc.freeze()


def pre_fork(server, worker) -> None:
    gc.freeze()  # what the master made since (a replacement worker's fork)
