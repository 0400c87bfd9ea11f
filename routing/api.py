"""`GET` / `PATCH /api/inbox/sites/{key}` (CONTRACT section 7): a site's routing, for staff of that site."""
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from advisors.models import Site
from advisors.selectors import advisor_is_staff
from conversations.api import InboxApi
from conversations.errors import Forbidden, NotFound, Refused
from livechat import schema
from routing import selectors, services


def site_routing_dict(site: Site) -> dict:
    rules = selectors.site_rules(site)
    return {"key": site.key, "name": site.name, "assignment": rules.assignment, "hours": rules.hours,
            "away_message": rules.away_message, "handoff_timeout_s": rules.handoff_timeout_s,
            "idle_close_min": rules.idle_close_min}


class SiteRoutingSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    assignment = serializers.ChoiceField(choices=["manual", "round_robin"])
    hours = serializers.DictField(allow_null=True)
    away_message = serializers.CharField()
    handoff_timeout_s = serializers.IntegerField()
    idle_close_min = serializers.IntegerField(allow_null=True)


class SiteRoutingApi(InboxApi):
    """404 for a site outside the caller's sites (whoever asks), then 403 for an advisor who is not staff."""

    def site(self, key: str) -> Site:
        site_id = self.advisor.site_id_by_key.get(key)
        if site_id is None:
            raise NotFound(_("No such site."))
        if not advisor_is_staff(self.advisor):
            raise Forbidden(_("Only staff change a site's routing."))
        return Site.objects.select_related("routing").get(pk=site_id)

    @extend_schema(responses={200: SiteRoutingSerializer, **schema.ERRORS})
    def get(self, request, key: str):
        return Response(site_routing_dict(self.site(key)))

    @extend_schema(request=SiteRoutingSerializer(partial=True), responses={200: SiteRoutingSerializer,
                                                                          **schema.ERRORS})
    def patch(self, request, key: str):
        site = self.site(key)
        if not isinstance(request.data, dict):
            raise Refused(_("A JSON object of the fields to change."))
        services.site_routing_update(site=site, **{k: v for k, v in request.data.items() if k not in ("key", "name")})
        return Response(site_routing_dict(site))
