from django.apps import AppConfig


class IngestConfig(AppConfig):
    name = "ingest"
    verbose_name = "Mail ingest pipeline"

    def ready(self) -> None:
        # The spool publishes to these tasks by name; every process that publishes (the ingress, the
        # web app's retry, the sweep) registers them too, so that task_always_eager runs them in place.
        # Imported here, not at the top, because Django loads apps.py before any model.
        from ingest import tasks  # noqa: F401
