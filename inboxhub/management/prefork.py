"""`make run`'s children forked from one loaded app, so they share its memory (issue 18).

    python -m inboxhub.management.prefork SPEC   (SPEC: the supervisor's JSON; `manage.py runall` writes it)

Web, SMTP ingress and worker each imported all of Django and the product on their own: three copies of
the same ~50 MiB. This process imports them once, forks each child, and each fork runs its command
line in-process (`python -m gunicorn …` as `runpy` of gunicorn with that argv) instead of starting a
new interpreter. The pages of the loaded app stay shared until a child writes to them (the collector
is kept off them with `gc.freeze`). Then this process becomes the supervisor (exec, same pid), which
adopts the forks as its own children. A child restarted later is started from its command line, as
before: it works the same, only without the shared pages.

Nothing here may open a connection or start a thread before the forks: each would share it.
"""

import contextlib
import gc
import json
import os
import runpy
import sys
import threading
import traceback
from importlib import import_module

import django
from setproctitle import setproctitle

from inboxhub import supervisor

# What the children import first thing, loaded here once. The tasks are imported through the Celery
# app (autodiscovery): the worker and whatever enqueues a task need them.
SHARED_MODULES = (
    "inboxhub.wsgi",
    "inboxhub.urls",
    "channels_conn.smtp",
    "gunicorn.app.wsgiapp",
    "gunicorn.workers.gthread",
    "celery.bin.celery",
    "celery.apps.worker",
    "celery.concurrency.prefork",
)


def load_the_app() -> None:
    django.setup()
    for name in SHARED_MODULES:
        import_module(name)
    import_module("inboxhub.celery").app.loader.import_default_modules()


def in_process(command: list[str]) -> tuple[str, str, list[str]] | None:
    """("module" or "path", its name, argv) for `python -m module …` or `python script …`; None otherwise."""
    if not command or command[0] != sys.executable or len(command) < 2:
        return None
    if command[1] == "-m" and len(command) > 2:
        return "module", command[2], command[2:]
    if not command[1].startswith("-"):
        return "path", command[1], command[1:]
    return None


def run_forked(command: list[str]) -> None:
    """In the fork: a session of its own, as the supervisor gives its children, then the command.

    Never returns: its exit ends the fork, which must not go on as the prefork."""
    code = 1
    try:
        os.setsid()
        kind, name, argv = in_process(command)
        setproctitle(" ".join(command))  # what `ps` and /proc/<pid>/cmdline show, as for a started child
        sys.argv = argv
        if kind == "module":
            runpy.run_module(name, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(name, run_name="__main__")
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        if not isinstance(exit_.code, int | None):
            print(exit_.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def fork_children(spec: dict) -> dict:
    """Fork every child that can run in-process; the spec with their pids, for the supervisor to adopt."""
    if threading.active_count() > 1:  # a fork would copy a thread's locks but not the thread
        supervisor.log("WARNING", "a thread runs after loading the app: children start as new processes")
        return spec
    gc.collect()
    gc.freeze()
    children = []
    for child in spec["children"]:
        if in_process(child["command"]) is not None:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                run_forked(child["command"])
            child = {**child, "pid": pid}
        children.append(child)
    return {**spec, "children": children}


def main(argv: list[str]) -> None:
    spec = json.loads(argv[0])
    load_the_app()
    spec = fork_children(spec)
    supervisor.become(spec)


if __name__ == "__main__":
    main(sys.argv[1:])
