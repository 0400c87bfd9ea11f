from django.urls import path
from django.views.generic import RedirectView

from conversations import pages

# Where people type the address by hand: the site's root and the inbox without its slash lead to the inbox.
to_inbox = RedirectView.as_view(url="/inbox/", permanent=False)

urlpatterns = [
    path("", to_inbox),
    path("inbox", to_inbox),
    path("inbox/", pages.inbox, name="inbox"),
]
