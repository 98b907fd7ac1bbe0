from django.urls import path

from routing import views

app_name = "automation"

urlpatterns = [
    path("", views.edit, name="edit"),
]
