from django.urls import path  # noqa: F401

app_name = "inbox_settings"

urlpatterns: list = []
