"""The key that signs sessions, reply addresses and links: never a predictable one (issue 16).

Production sets `SECRET_KEY`. `make run` and the tests need no configuration:
their key is random, made once per checkout and kept in `var/secret_key`. A
web, SMTP, worker or beat process started any other way without `SECRET_KEY`
refuses to start and says which variable is missing.
"""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

MISSING = (
    "SECRET_KEY is not set: InboxHub will not start without it. Set SECRET_KEY to a long random string, "
    "e.g. the output of: python -c 'import secrets; print(secrets.token_urlsafe(50))' "
    "(make run and the tests make their own; see README, Configuration)."
)


def local_secret_key(path: Path) -> str:
    """The key of this checkout's local runs: random, made on first use and kept in `path` (mode 0600)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(50) + "\n")
        # A link never replaces an existing file: of processes starting together, the first one's key wins.
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    key = path.read_text().strip()
    if not key:
        raise ImproperlyConfigured(f"{path} is empty: delete it and a new key is made, or set SECRET_KEY")
    return key


def secret_key_is_set() -> bool:
    try:
        return bool(settings.SECRET_KEY)
    except ImproperlyConfigured:  # Django's answer to an empty SECRET_KEY
        return False


def require_secret_key() -> None:
    """Refuse to start a process that serves or works (web, SMTP ingress, worker, beat) without a key."""
    if not secret_key_is_set():
        raise ImproperlyConfigured(MISSING)
