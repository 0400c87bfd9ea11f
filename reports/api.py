"""GET /api/inbox/reports (CONTRACT section 7): JSON, or CSV with format=csv."""
import csv
import io

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import renderers, serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response

from conversations.api import InboxApi
from conversations.errors import Refused
from livechat.renderers import OrjsonRenderer
from reports import selectors


class CsvRenderer(renderers.BaseRenderer):
    """The report as a spreadsheet: the days, a blank line, then the advisors (their own header rows)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["date", "started", "escalated", "closed"])
        for day in data["by_day"]:
            writer.writerow([day["date"], day["started"], day["escalated"], day["closed"]])
        writer.writerow([])
        writer.writerow(["username", "name", "closed", "first_response_s_p50", "csat_average"])
        for row in data["by_advisor"]:
            writer.writerow([row["username"], _cell(row["name"]), row["closed"],
                             _blank(row["first_response_s_p50"]), _blank(row["csat_average"])])
        return out.getvalue().encode("utf-8")


def _blank(value) -> str:
    return "" if value is None else str(value)


def _cell(text: str) -> str:
    """A name a spreadsheet would take for a formula is written as text."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class FormatChoice(BaseContentNegotiation):
    """`format=json|csv` decides, whatever the Accept header says (a client that asks for JSON by habit still gets
    the CSV it named)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        wanted = request.query_params.get("format") or "json"
        for renderer in renderers:
            if renderer.format == wanted:
                return renderer, renderer.media_type
        raise Refused(_("format is json or csv."), fields={"format": [_("json or csv.")]})


class ReportApi(InboxApi):
    renderer_classes = [OrjsonRenderer, CsvRenderer]
    content_negotiation_class = FormatChoice

    @extend_schema(parameters=[OpenApiParameter("from", str), OpenApiParameter("to", str),
                               OpenApiParameter("site", str), OpenApiParameter("advisor", str),
                               OpenApiParameter("format", str, enum=["json", "csv"])],
                   responses={200: inline_serializer("Report", {"conversations": serializers.DictField()})})
    def get(self, request):
        params = request.query_params
        scope = selectors.report_scope(advisor=self.advisor, date_from=params.get("from"), date_to=params.get("to"),
                                       site_key=params.get("site"), username=params.get("advisor"))
        response = Response(selectors.report(scope))
        if getattr(request, "accepted_renderer", None) and request.accepted_renderer.format == "csv":
            response["Content-Disposition"] = (f'attachment; filename="report-{scope.start.isoformat()}-'
                                               f'{scope.end.isoformat()}.csv"')
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        if response.status_code >= 400:  # errors are the contract's JSON, whatever format was asked
            request.accepted_renderer, request.accepted_media_type = OrjsonRenderer(), "application/json"
        return super().finalize_response(request, response, *args, **kwargs)
