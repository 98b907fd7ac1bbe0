from django.apps import AppConfig


class ChannelsConnConfig(AppConfig):
    name = "channels_conn"
