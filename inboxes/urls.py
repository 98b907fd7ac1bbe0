from django.urls import path

from inboxes import live_views, presence_views, reply_views, search_views, views

app_name = "inboxes"

urlpatterns = [
    path("", views.inbox_index, name="index"),
    path("<int:inbox_id>/", views.inbox_index, name="inbox"),
    path("mine/", views.assigned_to_me, name="mine"),
    path("counts/", views.inbox_counts, name="counts"),
    path("live/", live_views.poll, name="live"),
    path("search/", search_views.search, name="search"),
    path("c/<int:conversation_id>/", views.thread, name="thread"),
    path("c/<int:conversation_id>/reply/", reply_views.reply, name="reply"),
    path("c/<int:conversation_id>/news/", live_views.thread_news, name="thread_news"),
    path("c/<int:conversation_id>/presence/", presence_views.heartbeat, name="presence"),
    path("c/<int:conversation_id>/m/<int:message_id>/retry/", reply_views.retry_reply, name="retry_reply"),
    path("m/<int:message_id>/html/", views.message_html, name="message_html"),
    path("attachments/<uuid:attachment_id>/", views.attachment_download, name="attachment"),
    path("failed/", views.failed_messages, name="failed"),
    path("failed/<int:inbound_id>/retry/", views.retry_failed_message, name="retry_failed"),
]
