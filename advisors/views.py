from django import forms
from django.contrib.auth import get_user_model, login
from django.contrib.auth.password_validation import validate_password
from django.shortcuts import redirect, render

from advisors import services


class InvitationAcceptForm(forms.Form):
    username = forms.SlugField(max_length=150)
    password = forms.CharField(widget=forms.PasswordInput, min_length=8, strip=False)
    password_again = forms.CharField(widget=forms.PasswordInput, strip=False)

    def clean_username(self):
        username = self.cleaned_data["username"]
        if get_user_model().objects.filter(username=username).exists():
            raise forms.ValidationError("This username is taken.")
        return username

    def clean_password(self):
        password = self.cleaned_data["password"]
        validate_password(password)
        return password

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password") and cleaned.get("password_again") not in (None, cleaned["password"]):
            self.add_error("password_again", "The two passwords differ.")
        return cleaned


def invitation_accept(request, token: str):
    try:
        invitation = services.invitation_from_token(token)
    except services.InvitationInvalid as error:
        return render(request, "advisors/invitation_invalid.html", {"error": str(error)}, status=410)
    form = InvitationAcceptForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            advisor = services.invitation_accept(token=token, username=form.cleaned_data["username"],
                                                 password=form.cleaned_data["password"])
        except services.InvitationInvalid as error:
            return render(request, "advisors/invitation_invalid.html", {"error": str(error)}, status=410)
        login(request, advisor.user, backend="django.contrib.auth.backends.ModelBackend")
        if invitation.licensed and not advisor.licensed:  # every license went while the invitation waited
            return render(request, "advisors/invitation_joined.html", {"invitation": invitation})
        return redirect("/inbox/")
    fields = [(form["username"], "Username", "username", "Letters, digits, - or _."),
              (form["password"], "Password", "new-password", "At least 8 characters, not too common."),
              (form["password_again"], "Password again", "new-password", "")]
    return render(request, "advisors/invitation_accept.html", {"form": form, "invitation": invitation,
                                                               "fields": fields})
