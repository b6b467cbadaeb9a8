"""Main-host pages of the accounts app: the org admins' password reset (the admin's login page links to it)."""

from django.urls import path

from accounts import views

urlpatterns = [
    path("admin/password_reset/", views.PasswordResetView.as_view(), name="admin_password_reset"),
    path("admin/password_reset/done/", views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("password/reset/<str:token>", views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("admin/reset/done/", views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
]
