from django.urls import path

from inboxes import contact_views, views

app_name = "contacts"

urlpatterns = [
    path("", views.contact_list, name="list"),
    path("<int:contact_id>/", views.contact_detail, name="detail"),
    path("<int:contact_id>/owner/", views.contact_owner, name="owner"),
    path("<int:contact_id>/merge/", contact_views.contact_merge, name="merge"),
]
