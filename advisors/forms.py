"""Admin forms: avatars re-encoded with Pillow, origins validated as origins, the license through services."""
import io
import secrets
from urllib.parse import urlsplit

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from PIL import Image, ImageOps, UnidentifiedImageError

from advisors import security
from advisors.models import Account, Advisor, Invitation, Site
from advisors.selectors import licenses_granted, licenses_left

AVATAR_MAX_BYTES = 2 * 1024 * 1024
AVATAR_SIZE = 256


def avatar_clean(upload) -> ContentFile:
    """A square PNG of at most 256 px, without metadata, under an unguessable name."""
    if upload.size > AVATAR_MAX_BYTES:
        raise ValidationError(_("The avatar must be at most 2 MB."))
    try:
        with Image.open(upload) as image:
            if image.format not in ("JPEG", "PNG", "GIF", "WEBP"):
                raise ValidationError(_("The avatar must be a JPEG, PNG, GIF or WebP image."))
            if image.width * image.height > 40_000_000:
                raise ValidationError(_("The avatar has too many pixels."))
            image.load()
            square = ImageOps.fit(ImageOps.exif_transpose(image).convert("RGBA"), (AVATAR_SIZE, AVATAR_SIZE))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise ValidationError(_("The avatar is not an image this site can read.")) from None
    out = io.BytesIO()
    square.save(out, "PNG")
    return ContentFile(out.getvalue(), name=f"{secrets.token_urlsafe(16)}.png")


def origin_clean(value: str) -> str:
    """An origin is scheme://host[:port] and nothing else, e.g. https://shop.example.com."""
    parts = urlsplit(value.strip())
    try:
        port = parts.port
    except ValueError:
        raise ValidationError(gettext("%(value)s has an invalid port.") % {"value": repr(value)}) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(gettext("%(value)s is not an origin: write scheme://host[:port], e.g. https://example.com.")
                              % {"value": repr(value)})
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ValidationError(gettext("%(value)s is not an origin: no path, query, fragment or credentials.")
                              % {"value": repr(value)})
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


class OriginsField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 4})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        lines = [line.strip() for line in (value or "").replace(",", "\n").splitlines() if line.strip()]
        errors, origins = [], []
        for line in lines:
            try:
                origins.append(origin_clean(line))
            except ValidationError as error:
                errors.extend(error.messages)
        if errors:
            raise ValidationError(errors)
        return list(dict.fromkeys(origins))


class SiteForm(forms.ModelForm):
    allowed_origins = OriginsField(label=_("Allowed origins"), required=False,
                                   help_text=_("One origin per line, e.g. https://shop.example.com"))

    class Meta:
        model = Site
        fields = "__all__"

    def clean_color(self):
        color = self.cleaned_data["color"]
        if not (len(color) == 7 and color.startswith("#") and all(c in "0123456789abcdefABCDEF" for c in color[1:])):
            raise ValidationError(_("Write the color as #rrggbb."))
        return color.lower()


class AccountForm(forms.ModelForm):
    """The quota is never set below the licenses granted: said beside the field here, and checked again under the
    account's lock by `services.account_license_quota_set`, which is what holds when a grant races the change."""

    class Meta:
        model = Account
        fields = "__all__"

    def clean_license_quota(self):
        from advisors.services import QuotaBelowGranted

        quota = self.cleaned_data["license_quota"]
        if self.instance.pk:
            granted = licenses_granted(account=self.instance)
            if quota < granted:
                raise ValidationError(str(QuotaBelowGranted(self.instance, granted)))
        return quota


class InvitationForm(forms.ModelForm):
    """"Invite a collaborator": an e-mail, the name visitors will see, the license and the sites, checked here so the
    errors show beside their field; the service checks the license again."""

    class Meta:
        model = Invitation
        fields = ["account", "email", "display_name", "licensed", "sites"]
        widgets = {"sites": forms.CheckboxSelectMultiple}

    def clean(self):
        from advisors.services import LicenseQuotaExceeded

        cleaned = super().clean()
        account = cleaned.get("account")
        if account is None or self.instance.pk:
            return cleaned
        strangers = [site.name for site in cleaned.get("sites") or () if site.account_id != account.pk]
        if strangers:
            self.add_error("sites", gettext("Not a site of %(account)s: %(sites)s.") % {
                "account": account.name, "sites": ", ".join(strangers)})
        if cleaned.get("licensed") and licenses_left(account=account) == 0:
            self.add_error("licensed", str(LicenseQuotaExceeded(account)))
        email = cleaned.get("email")
        if email and Advisor.objects.filter(account=account, user__email__iexact=email).exists():
            self.add_error("email", gettext("A collaborator of %(account)s already has this e-mail.") % {
                "account": account.name})
        return cleaned


class AvatarInput(forms.ClearableFileInput):
    """The stored avatar as the picture it is (not its file name), above the usual change and clear controls."""

    def __init__(self, attrs=None):
        super().__init__({"accept": "image/jpeg,image/png,image/gif,image/webp", **(attrs or {})})

    def render(self, name, value, attrs=None, renderer=None):
        html = super().render(name, value, attrs, renderer)
        if value and getattr(value, "url", None):
            picture = format_html('<img src="{}" alt="{}" width="96" height="96" class="avatar-preview"'
                                  ' style="display:block;border-radius:50%;object-fit:cover;margin-bottom:8px">',
                                  value.url, gettext("The current avatar"))
            return picture + html
        return html


class AdvisorForm(forms.ModelForm):
    premium = forms.BooleanField(label=_("Livechat Premium"), required=False,
                                  help_text=_("Grants a license from the account's quota."))
    email = forms.EmailField(label=_("E-mail"), required=False)

    class Meta:
        model = Advisor
        fields = ["user", "account", "display_name", "avatar", "sees_chatbot", "email_on_escalation", "sound",
                  "sites"]
        widgets = {"avatar": AvatarInput}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["premium"].initial = self.instance.licensed
            self.fields["email"].initial = self.instance.user.email

    def clean(self):
        """Refuse a grant past the quota here, so the form shows it and nothing is saved. The service checks
        again under a lock, which is what holds when two administrators grant at once."""
        cleaned = super().clean()
        account = cleaned.get("account")
        if cleaned.get("premium") and not self.instance.licensed and account is not None:
            if licenses_left(account=account) == 0:
                from advisors.services import LicenseQuotaExceeded

                self.add_error("premium", str(LicenseQuotaExceeded(account)))
        return cleaned

    def clean_avatar(self):
        avatar = self.cleaned_data.get("avatar")
        if avatar and hasattr(avatar, "content_type"):  # a new upload, not the stored file
            return avatar_clean(avatar)
        return avatar


# ------------------------------------------------------------------------------ sign-in


class ThrottledLoginMixin:
    """An AuthenticationForm that asks advisors.security before checking the password, and tells it the outcome.
    `throttled` holds the seconds to wait when the attempt was refused (the view answers 429)."""

    throttled: float | None = None

    def clean(self):
        username, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        if not username or not password:
            return super().clean()
        address = security.client_address(self.request)
        self.throttled = security.login_attempt_check(username=username, address=address)
        if self.throttled is not None:
            raise ValidationError(
                ngettext("Too many failed sign-in attempts. Please wait %(seconds)d second before trying again.",
                         "Too many failed sign-in attempts. Please wait %(seconds)d seconds before trying again.",
                         self.throttled),
                code="throttled", params={"seconds": self.throttled})
        try:
            cleaned = super().clean()
        except ValidationError:
            if self.user_cache is None:  # the password was wrong (not: right, but no staff account for the admin)
                security.login_attempt_failed(username=username, address=address)
            raise
        security.login_attempt_succeeded(username=username)
        return cleaned


class LoginForm(ThrottledLoginMixin, AuthenticationForm):
    """/accounts/login/."""


class AdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    """/admin/login/: the same rule, so the admin is no side door for guessing."""
