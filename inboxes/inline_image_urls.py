from django.urls import path

from inboxes import views

app_name = "inline_images"

# Signed, without a session: requested by a mail's sandboxed HTML (inboxes/inline_images.py).
urlpatterns = [
    path("<str:token>/", views.inline_image, name="image"),
]
