from django.urls import path

from routing import api

urlpatterns = [
    path("api/inbox/sites/<str:key>", api.SiteRoutingApi.as_view(), name="inbox-site-routing"),
]
