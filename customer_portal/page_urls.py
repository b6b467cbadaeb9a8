"""Server-rendered pages; included by portal hosts only (portalsite/urls_portal.py)."""

from django.urls import path

from customer_portal import pages

urlpatterns = [
    path("", pages.home, name="portal-home"),
    path("invite/<str:token>", pages.invite, name="portal-invite"),
]
