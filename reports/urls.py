from django.urls import path

from reports import api, pages, widget_api

urlpatterns = [
    path("api/inbox/reports", api.ReportApi.as_view(), name="inbox-reports"),
    path("api/widget/rating", widget_api.RatingApi.as_view(), name="widget-rating"),
    path("inbox/reports/", pages.reports, name="reports"),
]
