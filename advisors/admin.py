"""The advisor-management page of the product: the account's quota, collaborators, sites, invitations.

Every change of a license goes through advisors.services, so the quota holds here as everywhere."""
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import RelatedFieldWidgetWrapper
from django.db import transaction
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from advisors import selectors, services
from advisors.forms import AccountForm, AdminLoginForm, AdvisorForm, InvitationForm, SiteForm
from advisors.models import Account, Advisor, Invitation, Site
from routing.admin import advisor_status

admin.site.login_form = AdminLoginForm  # wrong passwords count here too (advisors.security)


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    """The quota is the platform operator's (a superuser who is not of the account); the owner reads it."""

    form = AccountForm
    list_display = ["name", "owner", "license_quota", "licenses_used", "licenses_left"]
    readonly_fields = ["licenses_used", "licenses_left"]
    fields = ["name", "owner", "license_quota", "licenses_used", "licenses_left", "retention_days", "timezone"]

    def get_queryset(self, request):
        return selectors.accounts_with_licenses_granted(super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if not selectors.quota_editable_by(user=request.user, account=obj):
            readonly.append("license_quota")
        return readonly

    def save_model(self, request, account, form, change):
        """A changed quota goes through the service (the operator only, never below the licenses granted, under
        the account's lock); the other fields are saved as usual, with the stored quota."""
        if not change or "license_quota" not in form.changed_data:
            return super().save_model(request, account, form, change)
        wanted = account.license_quota
        with transaction.atomic():
            account.license_quota = Account.objects.get(pk=account.pk).license_quota
            super().save_model(request, account, form, change)
            try:
                account.license_quota = services.account_license_quota_set(
                    account=account, quota=wanted, by=request.user).license_quota
            except (services.QuotaBelowGranted, services.QuotaNotYours) as error:  # a grant raced the change
                self.message_user(request, gettext("The quota was not changed. %(reason)s") % {"reason": error},
                                  messages.ERROR)

    @admin.display(description=_("Licenses granted"))
    def licenses_used(self, account: Account) -> int:
        if hasattr(account, "granted"):  # annotated by get_queryset; a fresh object counts itself
            return account.granted
        return selectors.licenses_granted(account=account)

    @admin.display(description=_("Licenses left"))
    def licenses_left(self, account: Account) -> int:
        return selectors.licenses_left(account=account, granted=self.licenses_used(account))


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    form = SiteForm
    list_display = ["name", "key", "account", "chatbot", "livechat_only", "origins"]
    search_fields = ["name", "key"]

    @admin.display(description=_("Allowed origins"))
    def origins(self, site: Site) -> str:
        return ", ".join(site.allowed_origins)


@admin.register(Advisor)
class AdvisorAdmin(admin.ModelAdmin):
    """"Your collaborators": the license box is granted or revoked through the services."""

    form = AdvisorForm
    # Fits 1440 px beside the admin's two sidebars: the username and e-mail share a cell, headers are short.
    list_display = ["avatar_thumbnail", "display_name", "sign_in", "last_active", "messages_sent", "premium",
                    "site_names", advisor_status]
    list_display_links = ["avatar_thumbnail", "display_name"]
    list_filter = ["licensed", "sites"]
    search_fields = ["display_name", "user__username", "user__email"]
    readonly_fields = ["last_activity_at", "message_count"]
    filter_horizontal = ["sites"]
    list_select_related = ["user", "routing"]
    fields = ["user", "account", "display_name", "email", "avatar", "premium", "sees_chatbot",
              "email_on_escalation", "sound", "sites", "last_activity_at", "message_count"]
    actions = ["export_data"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("sites")

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        return [*readonly, "user"] if obj is not None else readonly  # not a list of every user once added

    def has_add_permission(self, request):
        # The account's people invite collaborators by e-mail (Invitation); attaching an existing user is left to
        # the platform operator.
        operator = request.user.is_superuser and not selectors.accounts_owned_or_joined(request.user).exists()
        return operator and super().has_add_permission(request)

    def changelist_view(self, request, extra_context=None):
        extra_context = extra_context or {}
        extra_context["accounts"] = [
            {"name": a.name, "quota": a.license_quota, "used": a.granted,
             "left": selectors.licenses_left(account=a, granted=a.granted)}
            for a in selectors.accounts_with_licenses_granted()
        ]
        extra_context["invitations"] = [
            {"email": i.email, "account": i.account.name, "licensed": i.licensed,
             "expired": services.invitation_expired(i), "url": reverse("admin:advisors_invitation_change", args=[i.pk])}
            for i in selectors.pending_invitations(accounts=selectors.accounts_of(request.user))[:20]
        ]
        return super().changelist_view(request, extra_context)

    @admin.display(description=_("Avatar"))
    def avatar_thumbnail(self, advisor: Advisor) -> str:
        if not advisor.avatar:  # the initial, as the inbox shows an advisor without a picture
            return format_html('<span class="avatar-initial" title="{}" style="display:inline-grid;'
                               'place-items:center;width:32px;height:32px;border-radius:50%;background:#dfe3ea;'
                               'color:#1b2132;font-weight:600">{}</span>', gettext("No picture yet"),
                               (str(advisor)[:1] or "?").upper())
        return format_html('<img src="{}" alt="" width="32" height="32" class="avatar-thumbnail"'
                           ' style="border-radius:50%;object-fit:cover;vertical-align:middle">', advisor.avatar.url)

    @admin.display(description=_("Username / e-mail"), ordering="user__username")
    def sign_in(self, advisor: Advisor) -> str:
        return format_html('{}<br><span class="quiet" style="overflow-wrap:anywhere">{}</span>', advisor.username,
                           advisor.email or gettext("no e-mail"))

    @admin.display(description=_("Last active"), ordering="last_activity_at", empty_value=_("never"))
    def last_active(self, advisor: Advisor) -> str | None:
        if advisor.last_activity_at is None:
            return None
        return date_format(timezone.localtime(advisor.last_activity_at), "j M Y, H:i")

    @admin.display(description=_("Messages"), ordering="message_count")
    def messages_sent(self, advisor: Advisor) -> int:
        return advisor.message_count

    @admin.display(description=_("Premium"), boolean=True, ordering="licensed")
    def premium(self, advisor: Advisor) -> bool:
        return advisor.licensed

    @admin.display(description=_("Sites"))
    def site_names(self, advisor: Advisor) -> str:
        return ", ".join(site.name for site in advisor.sites.all())

    @admin.action(description=_("Export the advisor's own data (JSON)"))
    def export_data(self, request, queryset):
        from integrations.admin import json_download
        from integrations.services import advisor_export

        exports = [advisor_export(advisor=advisor, actor=request.user) for advisor in queryset.order_by("pk")]
        return json_download(exports[0] if len(exports) == 1 else {"advisors": exports}, "advisors.json")

    def save_model(self, request, advisor, form, change):
        with transaction.atomic():
            if "email" in form.changed_data:
                advisor.user.email = form.cleaned_data["email"]
                advisor.user.save(update_fields=["email"])
            super().save_model(request, advisor, form, change)

    def save_related(self, request, form, formsets, change):
        """After the sites are saved: the license through the service, and open sockets told of the change."""
        super().save_related(request, form, formsets, change)
        advisor = form.instance
        wanted = form.cleaned_data["premium"]
        if wanted != advisor.licensed:
            try:
                services.license_set(advisor=advisor, licensed=wanted, by=request.user)
            except services.LicenseQuotaExceeded as error:  # lost a race with another grant
                self.message_user(request, gettext("%(advisor)s: the license was not granted. %(reason)s") % {
                    "advisor": advisor, "reason": error}, messages.ERROR)
        if {"sites", "sees_chatbot"} & set(form.changed_data):
            services.advisor_scope_changed(advisor=advisor, by=request.user)


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Reached from the advisors page ("Invite a collaborator"): e-mail, name, license and sites of the account."""

    form = InvitationForm
    list_display = ["email", "account", "licensed", "created_at", "accepted_at"]
    readonly_fields = ["invited_by", "created_at", "accepted_at", "accepted_by"]
    fields = ["account", "email", "display_name", "licensed", "sites", "invited_by", "created_at", "accepted_at",
              "accepted_by"]
    actions = ["send_again"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        # A sent invitation is what its e-mail said; to change it, invite again.
        return ["account", "email", "display_name", "licensed", "sites", *self.readonly_fields]

    def get_fields(self, request, obj=None):
        return self.fields[:5] if obj is None else self.fields

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "account":
            kwargs["queryset"] = selectors.accounts_of(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "sites":
            kwargs["queryset"] = Site.objects.filter(account__in=selectors.accounts_of(request.user)).order_by(
                "account", "name")
            kwargs["widget"] = forms.CheckboxSelectMultiple
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        if formfield is not None and isinstance(formfield.widget, RelatedFieldWidgetWrapper):
            # No "add a site / an account" shortcuts here: an invitation picks among what exists.
            formfield.widget.can_add_related = formfield.widget.can_change_related = False
            formfield.widget.can_view_related = formfield.widget.can_delete_related = False
        return formfield

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        if obj is None and "licensed" in form.base_fields:
            left = [gettext("%(account)s: %(left)d of %(quota)d left") % {
                        "account": a.name, "left": selectors.licenses_left(account=a, granted=a.granted),
                        "quota": a.license_quota}
                    for a in selectors.accounts_with_licenses_granted(selectors.accounts_of(request.user))[:5]]
            form.base_fields["licensed"].help_text += f" ({'; '.join(left)})" if left else ""
        return form

    def add_view(self, request, form_url="", extra_context=None):
        return super().add_view(request, form_url, {"title": gettext("Invite a collaborator"),
                                                          **(extra_context or {})})

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        account = selectors.accounts_of(request.user).order_by("pk").first()
        if account is not None:
            initial.setdefault("account", account.pk)
        return initial

    def save_model(self, request, invitation, form, change):
        if change:
            super().save_model(request, invitation, form, change)
            return
        data = form.cleaned_data
        try:
            link = services.invitation_create(account=data["account"], email=data["email"], invited_by=request.user,
                                              display_name=data["display_name"], sites=list(data["sites"]),
                                              licensed=data["licensed"])
        except services.LicenseQuotaExceeded as error:  # the last license went between the form and the save
            link = services.invitation_create(account=data["account"], email=data["email"], invited_by=request.user,
                                              display_name=data["display_name"], sites=list(data["sites"]))
            self.message_user(request, gettext("Invited without a license: %(reason)s") % {"reason": error},
                              messages.WARNING)
        form.instance = link.invitation
        self.message_user(request, gettext("Invitation sent to %(email)s.") % {"email": link.invitation.email})

    def save_related(self, request, form, formsets, change):
        pass  # the sites were saved with the invitation by the service; a sent invitation is read-only

    def response_add(self, request, obj, post_url_continue=None):
        if "_addanother" in request.POST or "_continue" in request.POST:
            return super().response_add(request, obj, post_url_continue)
        return HttpResponseRedirect(reverse("admin:advisors_advisor_changelist"))  # back to "Your collaborators"

    @admin.action(description=_("Send the invitation e-mail again"))
    def send_again(self, request, queryset):
        from advisors.tasks import invitation_send

        pending = [i for i in queryset.filter(accepted_at__isnull=True) if not services.invitation_expired(i)]
        for invitation in pending:
            invitation_send.delay(invitation.pk)
        skipped = queryset.count() - len(pending)
        message = ngettext("%(count)d invitation sent again.", "%(count)d invitations sent again.",
                           len(pending)) % {"count": len(pending)}
        if skipped:
            message += " " + ngettext("%(count)d used or expired, not sent: create a new invitation instead.",
                                      "%(count)d used or expired, not sent: create a new invitation instead.",
                                      skipped) % {"count": skipped}
        self.message_user(request, message)
