"""The advisor-facing HTML pages: the inbox shell and the login page.

The pages are server-rendered shells; everything they show about conversations comes from the inbox API and
socket (CONTRACT section 5) through the ES modules under static/inbox/js/. No inline script anywhere: each
page sends a Content-Security-Policy that forbids it, so a string that slipped into the DOM as markup still
could not run.
"""
from functools import wraps

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache

from advisors.forms import LoginForm

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    # Visitor images and advisor avatars are absolute URLs (PUBLIC_URL may be another host); image previews
    # before an upload are blob: URLs.
    "img-src 'self' data: blob: http: https:",
    "connect-src 'self' ws: wss:",
    "media-src 'self' data:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


def content_security_policy(view):
    """Send the pages' Content-Security-Policy with the response of `view`."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response

    return wrapped


@never_cache
@content_security_policy
@login_required
def inbox(request):
    """GET /inbox/: the advisor inbox. A signed-in user who is not an advisor gets a plain 403 page."""
    try:
        advisor = request.user.advisor
    except ObjectDoesNotExist:
        return render(request, "inbox/not_advisor.html", status=403)
    return render(request, "inbox/inbox.html", {"advisor": advisor})


@method_decorator(content_security_policy, name="dispatch")
class LoginView(auth_views.LoginView):
    """Django's LoginView with the pages' Content-Security-Policy header.

    The template (templates/registration/login.html) also carries the policy in a <meta> tag, so the page is
    covered whichever LoginView the root URLconf routes /accounts/login/ to.
    """

    redirect_authenticated_user = True
    authentication_form = LoginForm

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.throttled is not None:  # refused before the password was checked (advisors.security)
            response.status_code = 429
            response["Retry-After"] = str(int(form.throttled))
        return response
