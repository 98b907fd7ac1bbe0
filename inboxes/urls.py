from django.urls import path

from inboxes import views

app_name = "inboxes"

urlpatterns = [
    path("", views.inbox_index, name="index"),
    path("<int:inbox_id>/", views.inbox_index, name="inbox"),
    path("c/<int:conversation_id>/", views.thread, name="thread"),
    path("m/<int:message_id>/html/", views.message_html, name="message_html"),
    path("attachments/<uuid:attachment_id>/", views.attachment_download, name="attachment"),
    path("failed/", views.failed_messages, name="failed"),
    path("failed/<int:inbound_id>/retry/", views.retry_failed_message, name="retry_failed"),
]
