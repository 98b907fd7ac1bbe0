from django.urls import path

from inboxes import views

app_name = "inboxes"

urlpatterns = [
    path("", views.inbox_index, name="index"),
    path("<int:inbox_id>/", views.inbox_index, name="inbox"),
]
