from django.apps import AppConfig


class InboxhubConfig(AppConfig):
    name = "inboxhub"
    verbose_name = "InboxHub"
