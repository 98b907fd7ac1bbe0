from django.apps import AppConfig

from inboxhub.celery import app as celery_app


class InboxhubConfig(AppConfig):
    name = "inboxhub"
    verbose_name = "InboxHub"

    def ready(self) -> None:
        # Celery's own autodiscovery runs only in the worker. The web app publishes outbound mail to
        # inboxhub.tasks by name, so it registers the module too, or task_always_eager (no REDIS_URL)
        # could not run the task in place. By name, not an import: the tasks sit above apps.py in the layers.
        celery_app.autodiscover_tasks([self.name], force=True)
