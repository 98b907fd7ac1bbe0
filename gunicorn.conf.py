"""gunicorn's settings for every InboxHub web process (gunicorn reads ./gunicorn.conf.py on its own).

The access log keeps each request's path with its link tokens masked (issue 16), and the web server
refuses to start without SECRET_KEY before it opens its port.
"""

import os

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


def on_starting(server) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inboxhub.settings")  # read lazily, from here on
    if not secret_key_is_set():
        raise RuntimeError(MISSING)  # gunicorn prints "Error: <this>" and exits 1
