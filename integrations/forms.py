from django import forms
from django.utils.translation import gettext_lazy as _

from integrations import http, services
from integrations.models import EVENTS, Webhook


class WebhookForm(forms.ModelForm):
    url = forms.URLField(label=_("URL"), max_length=2000, assume_scheme="https",
                         help_text=_("http:// or https://; it must resolve to a public address."))
    events = forms.MultipleChoiceField(choices=[(e, e) for e in EVENTS], widget=forms.CheckboxSelectMultiple,
                                       label=_("Events"), help_text=_("What this address hears."))

    class Meta:
        model = Webhook
        fields = ["account", "url", "secret", "events", "include_notes", "active"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            services.webhook_url_check(url)
        except http.AddressRefused as refused:
            raise forms.ValidationError(str(refused)) from None
        except OSError:
            raise forms.ValidationError(_("This host name does not resolve.")) from None
        return url

    def clean_events(self) -> list[str]:
        return [event for event in EVENTS if event in self.cleaned_data["events"]]
