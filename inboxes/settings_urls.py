from django.urls import path

from inboxes import settings_views as views

app_name = "inbox_settings"

urlpatterns = [
    path("", views.inbox_settings_index, name="index"),
    path("switch/", views.switch_inbox, name="switch"),
    path("new/", views.new_inbox, name="new"),
    path("<int:inbox_id>/", views.inbox_detail, name="detail"),
    path("<int:inbox_id>/rename/", views.rename, name="rename"),
    path("<int:inbox_id>/access/", views.access, name="access"),
    path("<int:inbox_id>/channels/<int:channel_id>/switch/", views.switch_channel, name="switch_channel"),
]
