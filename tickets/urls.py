from django.urls import path

from tickets import views

app_name = "ticket_settings"

urlpatterns = [
    path("", views.edit, name="edit"),
    path("stages/", views.stages, name="stages"),
]
