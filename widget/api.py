"""The widget's REST endpoints (CONTRACT section 4), called cross-origin from customer sites.

No cookies: the visitor is known by a bearer token. A browser's Origin must be one the site allows; a
request without Origin (not a browser) is not refused for that."""
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from advisors.models import Site
from conversations import selectors, services
from conversations.errors import ErrorCode, Forbidden, NotFound, Refused
from conversations.images import image_process
from conversations.models import Visitor
from conversations.presenters import message_dict, widget_conversation_dict
from conversations.uploads import UploadGate
from livechat import schema
from livechat.api import refuse_nul_in_query

origin_allowed = selectors.site_allows_origin  # the rule is the selector's; this name is kept for older callers


def _all_allowed_origins() -> set[str]:
    """For preflights, which name no site: any origin some site allows (the real request checks its own)."""
    return {origin for origins in Site.objects.values_list("allowed_origins", flat=True) for origin in origins}


def _client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


class WidgetApi(APIView):
    """CORS for customer origins; the allowed origin is echoed only once we know the site."""

    authentication_classes = []
    permission_classes = [AllowAny]
    allowed_origin: str | None = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        refuse_nul_in_query(request)

    def check_origin(self, site: Site) -> None:
        origin = self.request.headers.get("Origin")
        if not selectors.site_allows_origin(site, origin):
            raise Forbidden("This site does not allow the widget on this origin.", code=ErrorCode.ORIGIN_NOT_ALLOWED)
        self.allowed_origin = origin

    def visitor(self) -> Visitor:
        header = self.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        visitor = selectors.visitor_for_token(token=token.strip()) if scheme.lower() == "bearer" else None
        if visitor is None:
            raise Refused("A valid visitor token is required (Authorization: Bearer …).", code=ErrorCode.UNAUTHORIZED,
                          status=401)
        self.check_origin(visitor.site)
        return visitor

    def options(self, request, *args, **kwargs):
        origin = request.headers.get("Origin")
        response = Response(status=status.HTTP_204_NO_CONTENT)
        if origin and origin.rstrip("/") in _all_allowed_origins():
            self.allowed_origin = origin
            response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            response["Access-Control-Max-Age"] = "600"
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        origin = request.headers.get("Origin")
        if origin and self.allowed_origin == origin:
            response["Access-Control-Allow-Origin"] = origin
        response["Vary"] = "Origin"
        response["Cache-Control"] = "no-store"
        return response


class SessionStartApi(WidgetApi):
    parser_classes = [JSONParser]

    class SessionInput(serializers.Serializer):
        site = serializers.CharField(max_length=64)
        token = serializers.CharField(max_length=200, required=False, allow_blank=True)
        page = serializers.URLField(max_length=2000, required=False, allow_blank=True)

    @extend_schema(request=SessionInput, responses={201: schema.WidgetSessionSerializer,
                                                    200: schema.WidgetSessionSerializer, **schema.ERRORS})
    def post(self, request):
        data = self.SessionInput(data=request.data)
        data.is_valid(raise_exception=True)
        site = selectors.site_for_key(data.validated_data["site"])
        if site is None:
            raise NotFound("No site has this key.")
        self.check_origin(site)
        session = services.visitor_session_start(site=site, token=data.validated_data.get("token") or None,
                                                 page=data.validated_data.get("page", ""),
                                                 address=_client_ip(request))
        body = {
            "token": session.token,
            "visitor": {"id": session.visitor.pk},
            "conversation": widget_conversation_dict(session.conversation),
            "site": {"name": site.name, "color": site.color, "mode": site.mode},
        }
        return Response(body, status=201 if session.created else 200)


class MessageListApi(WidgetApi):
    @extend_schema(parameters=[OpenApiParameter("after", int), OpenApiParameter("limit", int)],
                   responses={200: schema.MessageListSerializer, 401: schema.ErrorSerializer})
    def get(self, request):
        visitor = self.visitor()
        try:
            after = max(0, int(request.query_params.get("after", 0)))
            limit = min(100, max(1, int(request.query_params.get("limit", 100))))
        except ValueError:
            raise Refused("after and limit must be whole numbers.") from None
        items = selectors.messages_for_visitor(conversation_id=visitor.conversation.pk, after=after, limit=limit)
        return Response({"messages": [message_dict(m) for m in items]})


class ImageUploadApi(UploadGate, WidgetApi):
    """The token, its origin, the announced size and the token's send limit (shared with its socket sends) are
    checked before the body is read (conversations.uploads)."""

    parser_classes = [MultiPartParser, FormParser]
    sender: Visitor | None = None

    def authenticate_sender(self) -> None:
        self.sender = self.visitor()

    def upload_wait(self) -> float | None:
        return services.visitor_send_wait(visitor_id=self.sender.pk)

    @extend_schema(request={"multipart/form-data": schema.ImageUploadSerializer},
                   responses={201: schema.MessageEnvelopeSerializer, **schema.ERRORS})
    def post(self, request):
        visitor = self.sender
        client_id = services.client_id_clean(request.data.get("client_id"))
        image = image_process(request.FILES.get("image"))
        sent = services.visitor_image_send(visitor=visitor, client_id=client_id, image=image)
        return Response({"message": message_dict(sent.message)}, status=201 if sent.created else 200)
