from django import forms
from django.contrib.auth import get_user_model, login
from django.contrib.auth.password_validation import validate_password
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _

from advisors import services


class InvitationAcceptForm(forms.Form):
    username = forms.SlugField(label=_("Username"), max_length=150, help_text=_("Letters, digits, - or _."))
    password = forms.CharField(label=_("Password"), widget=forms.PasswordInput, min_length=8, strip=False,
                               help_text=_("At least 8 characters, not too common."))
    password_again = forms.CharField(label=_("Password again"), widget=forms.PasswordInput, strip=False)

    def clean_username(self):
        username = self.cleaned_data["username"]
        if get_user_model().objects.filter(username=username).exists():
            raise forms.ValidationError(_("This username is taken."))
        return username

    def clean_password(self):
        password = self.cleaned_data["password"]
        validate_password(password)
        return password

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password") and cleaned.get("password_again") not in (None, cleaned["password"]):
            self.add_error("password_again", _("The two passwords differ."))
        return cleaned


def invitation_accept(request, token: str):
    try:
        invitation = services.invitation_from_token(token)
    except services.InvitationInvalid as error:
        return _invalid(request, error)
    form = InvitationAcceptForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            advisor = services.invitation_accept(token=token, username=form.cleaned_data["username"],
                                                 password=form.cleaned_data["password"])
        except services.InvitationInvalid as error:
            return _invalid(request, error)
        login(request, advisor.user, backend="django.contrib.auth.backends.ModelBackend")
        if invitation.licensed and not advisor.licensed:  # every license went while the invitation waited
            return render(request, "advisors/invitation_joined.html", {"invitation": invitation})
        return redirect("/inbox/")
    fields = [(form[name], form[name].label, autocomplete, form[name].help_text)
              for name, autocomplete in [("username", "username"), ("password", "new-password"),
                                         ("password_again", "new-password")]]
    return render(request, "advisors/invitation_accept.html", {"form": form, "invitation": invitation,
                                                               "fields": fields})


def _invalid(request, error: services.InvitationInvalid):
    """410 with the reason, in the request's language (gettext of a text already translated returns it unchanged)."""
    return render(request, "advisors/invitation_invalid.html", {"error": str(error)}, status=410)
