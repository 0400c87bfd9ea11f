from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from conversations import pages
from livechat.health import healthz
from livechat.i18n import InboxCatalogue

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("jsi18n/", InboxCatalogue.as_view(), name="javascript-catalog"),
    path("admin/", admin.site.urls),
    path("accounts/login/", pages.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("", include("advisors.urls")),
    path("", include("conversations.urls")),
    path("", include("conversations.page_urls")),
    path("", include("widget.urls")),
    path("", include("routing.urls")),
    path("", include("reports.urls")),
    path("", include("productivity.urls")),
]
