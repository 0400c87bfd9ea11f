"""The inbox and widget endpoints of CONTRACT section 7 ("Canned responses and labels", "Search and transcripts"):
thin views over productivity.selectors and productivity.services; conversations through the one access check."""
from django.http import HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from conversations import selectors as conversation_selectors
from conversations.api import InboxApi
from conversations.errors import Refused
from conversations.presenters import conversation_row_dict, message_row_dict
from livechat import schema
from productivity import selectors, services, transcripts
from widget.api import WidgetApi


def canned_dict(canned) -> dict:
    return {"id": canned.pk, "shortcut": canned.shortcut, "text": canned.text, "scope": canned.scope}


def label_dict(label) -> dict:
    return {"name": label.name, "color": label.color}


class CannedListApi(InboxApi):
    class CannedInput(serializers.Serializer):
        shortcut = serializers.CharField(max_length=100, trim_whitespace=False)
        text = serializers.CharField(max_length=10000, trim_whitespace=False)
        scope = serializers.CharField(max_length=20, default="personal")

    @extend_schema(operation_id="inbox_canned_list", parameters=[OpenApiParameter("q", str)], responses={200: None})
    def get(self, request):
        found = selectors.canned_list(advisor=self.advisor, q=request.query_params.get("q") or None)
        return Response({"results": [canned_dict(c) for c in found]})

    @extend_schema(operation_id="inbox_canned_create", request=CannedInput, responses={201: None, **schema.ERRORS})
    def post(self, request):
        data = self.CannedInput(data=request.data)
        data.is_valid(raise_exception=True)
        canned = services.canned_create(advisor=self.advisor, **data.validated_data)
        return Response(canned_dict(canned), status=201)


class CannedDetailApi(InboxApi):
    class CannedChange(serializers.Serializer):
        shortcut = serializers.CharField(max_length=100, required=False, trim_whitespace=False)
        text = serializers.CharField(max_length=10000, required=False, trim_whitespace=False)

    @extend_schema(operation_id="inbox_canned_update", request=CannedChange, responses={200: None, **schema.ERRORS})
    def patch(self, request, canned_id: int):
        canned = selectors.canned_for_advisor(advisor=self.advisor, canned_id=canned_id)
        data = self.CannedChange(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        canned = services.canned_update(advisor=self.advisor, canned=canned, **data.validated_data)
        return Response(canned_dict(canned))

    @extend_schema(operation_id="inbox_canned_delete", request=None, responses={204: None, **schema.ERRORS})
    def delete(self, request, canned_id: int):
        canned = selectors.canned_for_advisor(advisor=self.advisor, canned_id=canned_id)
        services.canned_delete(advisor=self.advisor, canned=canned)
        return Response(status=204)


class LabelInput(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    color = serializers.CharField(max_length=20, default="#64748b")


class LabelListApi(InboxApi):
    @extend_schema(operation_id="inbox_labels_list", responses={200: None})
    def get(self, request):
        return Response({"results": [label_dict(label) for label in
                                     selectors.label_list(account_id=self.advisor.account_id)]})

    @extend_schema(operation_id="inbox_labels_create", request=LabelInput, responses={201: None, **schema.ERRORS})
    def post(self, request):
        data = LabelInput(data=request.data)
        data.is_valid(raise_exception=True)
        label = services.label_create(advisor=self.advisor, name=data.validated_data.get("name", ""),
                                      color=data.validated_data["color"])
        return Response(label_dict(label), status=201)


class LabelDetailApi(InboxApi):
    @extend_schema(operation_id="inbox_label_create_by_name", request=LabelInput,
                   responses={201: None, **schema.ERRORS})
    def post(self, request, name: str):
        data = LabelInput(data=request.data)
        data.is_valid(raise_exception=True)
        label = services.label_create(advisor=self.advisor, name=name, color=data.validated_data["color"])
        return Response(label_dict(label), status=201)

    @extend_schema(operation_id="inbox_label_delete", request=None, responses={204: None, **schema.ERRORS})
    def delete(self, request, name: str):
        services.label_delete(advisor=self.advisor, name=name)
        return Response(status=204)


class ConversationLabelsApi(InboxApi):
    class LabelsChange(serializers.Serializer):
        add = serializers.ListField(child=serializers.CharField(max_length=100), required=False, default=list)
        remove = serializers.ListField(child=serializers.CharField(max_length=100), required=False, default=list)

    @extend_schema(operation_id="inbox_conversation_labels_change", request=LabelsChange,
                   responses={200: schema.ConversationSerializer, **schema.ERRORS})
    def post(self, request, conversation_id: int):
        conversation = self.conversation(conversation_id)
        data = self.LabelsChange(data=request.data)
        data.is_valid(raise_exception=True)
        services.conversation_labels_change(advisor=self.advisor, conversation_id=conversation.pk,
                                            **data.validated_data)
        return self.conversation_response(conversation.pk)


class SearchApi(InboxApi):
    @extend_schema(operation_id="inbox_search", parameters=[OpenApiParameter("q", str), OpenApiParameter("site", str),
                               OpenApiParameter("cursor", str)], responses={200: None, **schema.ERRORS})
    def get(self, request):
        params = request.query_params
        if len(params.get("q", "")) > 200:
            raise Refused(_("q is limited to 200 characters."), fields={"q": [_("At most 200 characters.")]})
        found, next_cursor = selectors.search(advisor=self.advisor, q=params.get("q"),
                                              site_key=params.get("site") or None,
                                              cursor=params.get("cursor") or None)
        licensed = self.advisor.licensed
        sites = conversation_selectors.sites_of(self.advisor, [row for row, _ in found])
        return Response({
            "results": [{"conversation": conversation_row_dict(row, site=sites[row["site_id"]], licensed=licensed),
                         "message": message_row_dict(m) if m is not None else None} for row, m in found],
            "next": next_cursor,
        })


class TranscriptApi(InboxApi):
    """`format` is the contract's parameter here, not DRF's renderer override: errors stay JSON."""

    def perform_content_negotiation(self, request, force=False):
        renderer = self.get_renderers()[0]
        return renderer, renderer.media_type

    @extend_schema(operation_id="inbox_conversation_transcript",
                   parameters=[OpenApiParameter("format", str, enum=["txt", "html"])],
                   responses={(200, "text/plain"): str, (200, "text/html"): str, **schema.ERRORS})
    def get(self, request, conversation_id: int):
        kind = request.query_params.get("format", "txt")
        if kind not in ("txt", "html"):
            raise Refused(_("format must be txt or html."), fields={"format": [_("txt or html.")]})
        conversation = self.conversation(conversation_id)
        licensed = self.advisor.licensed
        items = selectors.transcript_items(conversation_id=conversation.pk,
                                           notes=conversation_selectors.advisor_sees_notes(self.advisor))
        label = transcripts.advisor_visitor_label(conversation, licensed=licensed)
        if kind == "html":
            response = HttpResponse(transcripts.as_html(conversation, items, visitor_label=label),
                                    content_type="text/html; charset=utf-8")
        else:
            response = HttpResponse(transcripts.as_text(conversation, items, visitor_label=label),
                                    content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="conversation-{conversation.pk}.{kind}"'
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
        return response


class WidgetTranscriptApi(WidgetApi):
    parser_classes = [JSONParser]

    class TranscriptInput(serializers.Serializer):
        email = serializers.EmailField(max_length=254)

    @extend_schema(operation_id="widget_transcript_request", request=TranscriptInput,
                   responses={202: None, **schema.ERRORS})
    def post(self, request):
        visitor = self.visitor()
        data = self.TranscriptInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.transcript_request(visitor=visitor, email=data.validated_data["email"])
        return Response({"status": "accepted"}, status=202)
