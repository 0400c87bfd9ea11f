"""The advisor-management page of the product: the account's quota, collaborators, sites, invitations.

Every change of a license goes through advisors.services, so the quota holds here as everywhere."""
from django.contrib import admin, messages
from django.db import transaction
from django.utils.html import format_html

from advisors import selectors, services
from advisors.forms import AdminLoginForm, AdvisorForm, SiteForm
from advisors.models import Account, Advisor, Invitation, Site

admin.site.login_form = AdminLoginForm  # wrong passwords count here too (advisors.security)


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "license_quota", "licenses_used", "licenses_left"]
    readonly_fields = ["licenses_used", "licenses_left"]
    fields = ["name", "owner", "license_quota", "licenses_used", "licenses_left", "timezone"]

    def get_queryset(self, request):
        return selectors.accounts_with_licenses_granted(super().get_queryset(request))

    @admin.display(description="Licenses granted")
    def licenses_used(self, account: Account) -> int:
        if hasattr(account, "granted"):  # annotated by get_queryset; a fresh object counts itself
            return account.granted
        return selectors.licenses_granted(account=account)

    @admin.display(description="Licenses left")
    def licenses_left(self, account: Account) -> int:
        return selectors.licenses_left(account=account, granted=self.licenses_used(account))


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    form = SiteForm
    list_display = ["name", "key", "account", "chatbot", "livechat_only", "origins"]
    search_fields = ["name", "key"]

    @admin.display(description="Allowed origins")
    def origins(self, site: Site) -> str:
        return ", ".join(site.allowed_origins)


@admin.register(Advisor)
class AdvisorAdmin(admin.ModelAdmin):
    """"Your collaborators": the license box is granted or revoked through the services."""

    form = AdvisorForm
    list_display = ["display_name", "username", "email", "avatar_thumbnail", "last_activity_at", "message_count",
                    "licensed", "site_names"]
    list_filter = ["licensed", "sites"]
    search_fields = ["display_name", "user__username", "user__email"]
    readonly_fields = ["last_activity_at", "message_count"]
    filter_horizontal = ["sites"]
    list_select_related = ["user"]
    fields = ["user", "account", "display_name", "email", "avatar", "premium", "sees_chatbot",
              "email_on_escalation", "sound", "sites", "last_activity_at", "message_count"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("sites")

    def changelist_view(self, request, extra_context=None):
        extra_context = extra_context or {}
        extra_context["accounts"] = [
            {"name": a.name, "quota": a.license_quota, "used": a.granted,
             "left": selectors.licenses_left(account=a, granted=a.granted)}
            for a in selectors.accounts_with_licenses_granted()
        ]
        return super().changelist_view(request, extra_context)

    @admin.display(description="Avatar")
    def avatar_thumbnail(self, advisor: Advisor) -> str:
        if not advisor.avatar:
            return "—"
        return format_html('<img src="{}" alt="" width="32" height="32" style="border-radius:50%">',
                           advisor.avatar.url)

    @admin.display(description="Sites")
    def site_names(self, advisor: Advisor) -> str:
        return ", ".join(site.name for site in advisor.sites.all())

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
                services.license_set(advisor=advisor, licensed=wanted)
            except services.LicenseQuotaExceeded as error:  # lost a race with another grant
                self.message_user(request, f"{advisor}: the license was not granted. {error}", messages.ERROR)
        if {"sites", "sees_chatbot"} & set(form.changed_data):
            services.advisor_scope_changed(advisor=advisor)


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "account", "created_at", "accepted_at"]
    readonly_fields = ["invited_by", "created_at", "accepted_at", "accepted_by"]
    fields = ["account", "email", "display_name", "sites", "invited_by", "created_at", "accepted_at", "accepted_by"]
    filter_horizontal = ["sites"]
    actions = ["send_again"]

    def save_model(self, request, invitation, form, change):
        if change:
            super().save_model(request, invitation, form, change)
            return
        link = services.invitation_create(account=form.cleaned_data["account"], email=form.cleaned_data["email"],
                                          invited_by=request.user, display_name=form.cleaned_data["display_name"])
        form.instance = invitation = link.invitation
        self.message_user(request, f"Invitation sent to {invitation.email}.")

    def save_related(self, request, form, formsets, change):
        form.instance.sites.set(form.cleaned_data["sites"])

    @admin.action(description="Send the invitation e-mail again")
    def send_again(self, request, queryset):
        from advisors.tasks import invitation_send

        pending = [i for i in queryset.filter(accepted_at__isnull=True) if not services.invitation_expired(i)]
        for invitation in pending:
            invitation_send.delay(invitation.pk)
        skipped = queryset.count() - len(pending)
        self.message_user(request, f"{len(pending)} invitation(s) sent again." + (
            f" {skipped} used or expired, not sent: create a new invitation instead." if skipped else ""))
