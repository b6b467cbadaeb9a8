"""Server-rendered pages; included by portal hosts only (portalsite/urls_portal.py)."""

from django.urls import path

from customer_portal import pages

urlpatterns = [
    path("", pages.home, name="portal-home"),
    path("invite/<str:token>", pages.invite, name="portal-invite"),
    path("login", pages.login, name="portal-login"),
    path("logout", pages.logout, name="portal-logout"),
    path("login/email", pages.login_email, name="portal-login-email"),
    path("login/email/<str:token>", pages.login_email_link, name="portal-login-email-link"),
    path("login/code", pages.login_code, name="portal-login-code"),
    path("password/forgot", pages.password_forgot, name="portal-password-forgot"),
    path("password/reset/<str:token>", pages.password_reset_page, name="portal-password-reset"),
    path("account", pages.account, name="portal-account"),
]
