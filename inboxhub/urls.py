from django.contrib.auth import views as auth_views
from django.urls import include, path, reverse_lazy

from channels_conn import views as channel_views
from inboxes import reply_views
from inboxes import views as inbox_views
from inboxhub.forms import ResetPasswordForm
from inboxhub.views import auth, availability, conversations, members, notifications, settings_home, teams

account_settings = [
    path("", settings_home.settings_home, name="settings_home"),
    path("members/", members.member_list, name="member_list"),
    path("members/add/", members.member_add, name="member_add"),
    path("members/<int:member_id>/", members.member_edit, name="member_edit"),
    path("members/<int:member_id>/remove/", members.member_remove, name="member_remove"),
    path("members/pending/withdraw/", members.pending_withdraw, name="pending_withdraw"),
    path(
        "members/invitations/<int:invitation_id>/withdraw/",
        members.invitation_withdraw,
        name="invitation_withdraw",
    ),
    path("teams/", teams.team_list, name="team_list"),
    path("teams/<int:team_id>/", teams.team_edit, name="team_edit"),
    path("teams/<int:team_id>/delete/", teams.team_delete, name="team_delete"),
    path("inboxes/", include("inboxes.settings_urls")),
    path("inboxes/<int:inbox_id>/fallback/", include("channels_conn.urls")),
    path("inboxes/<int:inbox_id>/fallback/automation/", include("routing.urls")),
    path("inboxes/<int:inbox_id>/fallback/tickets/", include("tickets.urls")),
]

conversation_actions = [
    path("assign/", conversations.assign, name="assign"),
    path("close/", conversations.close, name="close"),
    path("reopen/", conversations.reopen, name="reopen"),
    path("note/", reply_views.note, name="note"),
]

tenant = [
    path("", inbox_views.account_home, name="account_home"),
    path("inbox/c/<int:conversation_id>/", include((conversation_actions, "conversations"))),
    path("inbox/", include("inboxes.urls")),
    path("contacts/", include("inboxes.contact_urls")),
    path("tickets/", include("tickets.board_urls")),
    path("settings/", include(account_settings)),
    path("availability/", availability.set_my_availability, name="availability"),
    path("notifications/", notifications.notification_settings, name="notification_settings"),
]

urlpatterns = [
    path("", auth.home, name="home"),
    path("signup/", auth.signup, name="signup"),
    path("signup/sent/", auth.signup_sent, name="signup_sent"),
    path("signup/verify/<str:token>/", auth.signup_verify, name="signup_verify"),
    path("accounts/", auth.accounts, name="accounts"),
    path("invitations/", auth.invitations, name="invitations"),
    path(
        "invitations/<int:invitation_id>/accept/",
        auth.invitation_answer,
        {"answer": "accept"},
        name="invitation_accept",
    ),
    path(
        "invitations/<int:invitation_id>/decline/",
        auth.invitation_answer,
        {"answer": "decline"},
        name="invitation_decline",
    ),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password/change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path(
        "password/reset/",
        auth_views.PasswordResetView.as_view(form_class=ResetPasswordForm),
        name="password_reset",
    ),
    path("password/reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path(
        "invite/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="registration/invite_accept.html",
            post_reset_login=True,
            post_reset_login_backend="django.contrib.auth.backends.ModelBackend",
            success_url=reverse_lazy("home"),
        ),
        name="invite_accept",
    ),
    # C4: the from-address verification link works without signing in (it proves only the mailbox).
    path("verify/from-address/", channel_views.verify_from_address, name="verify_from_address"),
    path("inline-images/", include("inboxes.inline_image_urls")),
    path("a/<slug:subdomain>/", include(tenant)),
]
