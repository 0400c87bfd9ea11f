from django.urls import path

from conversations import pages

urlpatterns = [
    path("inbox/", pages.inbox, name="inbox"),
]
