from django.urls import path

from accounts.api.views import AuthViewSet

urlpatterns = [
    path("token", AuthViewSet.as_view({"post": "token"}), name="auth-token"),
    path("token/refresh", AuthViewSet.as_view({"post": "refresh"}), name="auth-token-refresh"),
    path("logout", AuthViewSet.as_view({"post": "logout"}), name="auth-logout"),
]
