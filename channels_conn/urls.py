from django.urls import path

from channels_conn import views

app_name = "fallback"

# Under /a/<subdomain>/settings/inboxes/<inbox_id>/fallback/
urlpatterns = [
    path("", views.configuration, name="configuration"),
    path("preview/", views.preview, name="preview"),
    path("check-domain/", views.check_domain, name="check_domain"),
    path("signature/editor-html/", views.editor_html, name="editor_html"),
]
