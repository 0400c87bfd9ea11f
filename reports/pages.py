"""GET /inbox/reports/: the reports page, a shell that static/inbox/js/reports.js fills from the API."""
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from advisors.selectors import advisor_is_staff
from conversations.pages import content_security_policy


@never_cache
@content_security_policy
@login_required
def reports(request):
    try:
        advisor = request.user.advisor
    except ObjectDoesNotExist:
        return render(request, "inbox/not_advisor.html", status=403)
    return render(request, "reports/reports.html", {"advisor": advisor, "staff": advisor_is_staff(advisor)})
