from django.urls import path

from tickets import board_views

app_name = "tickets"

urlpatterns = [
    path("", board_views.board, name="board"),
    path("<int:ticket_id>/stage/", board_views.move, name="move"),
    path("<int:ticket_id>/priority/", board_views.set_priority, name="priority"),
    path("<int:ticket_id>/owner/", board_views.set_owner, name="owner"),
    path("new/<int:conversation_id>/", board_views.create, name="create"),
]
