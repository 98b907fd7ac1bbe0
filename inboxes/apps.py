from django.apps import AppConfig


class InboxesConfig(AppConfig):
    name = "inboxes"

    def ready(self) -> None:
        # Replies are queued by task name (inboxes.replies.DELIVER_TASK); the web process registers
        # the task too, so that task_always_eager (no REDIS_URL) delivers them in place.
        # Imported here, not at the top, because Django loads apps.py before any model.
        from inboxes import tasks  # noqa: F401
