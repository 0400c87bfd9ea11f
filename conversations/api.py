"""The inbox REST API of CONTRACT section 5: thin views over selectors (reads) and services (writes)."""
from django.conf import settings
from django.contrib.auth import authenticate
from django.utils import translation
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import NotAuthenticated
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from advisors import security
from advisors.services import advisor_update_preferences
from conversations import selectors, services
from conversations.auth import token_issue, token_revoke
from conversations.errors import Forbidden, Refused
from conversations.images import image_process
from conversations.presenters import avatar_url, conversation_dict, conversation_row_dict, message_dict
from conversations.uploads import UploadGate
from livechat import schema
from livechat.api import ApiError, refuse_nul_in_query
from routing import selectors as routing_selectors
from routing import services as routing_services


class TokenApi(APIView):
    """POST: a username and password for a token (guessing is slowed then refused: advisors.security).
    DELETE: revokes the caller's token (its sockets close 4401)."""

    permission_classes = [AllowAny]

    class TokenInput(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=4096)

    def get_authenticators(self):
        # POST proves who the caller is with a password: a stale token in its headers must not stop it.
        post = getattr(self.request, "method", None) == "POST"  # no request while the schema is generated
        return [] if post else super().get_authenticators()

    @extend_schema(request=TokenInput, responses={200: schema.TokenSerializer, 400: schema.ErrorSerializer,
                                                  429: schema.ErrorSerializer})
    def post(self, request):
        data = self.TokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        username, address = data.validated_data["username"], security.client_address(request)
        if (wait := security.login_attempt_check(username=username, address=address)) is not None:
            response = Response({"code": "rate_limited", "retry_after": wait,
                                 "detail": "Too many failed sign-in attempts; try again later."}, status=429)
            response["Retry-After"] = str(int(wait))
            return response
        user = authenticate(request, **data.validated_data)
        if user is None or not user.is_active:
            security.login_attempt_failed(username=username, address=address)
            raise ApiError(400, "invalid_credentials", _("Unable to log in with these credentials."))
        security.login_attempt_succeeded(username=username)
        return Response({"token": token_issue(user=user).key})

    @extend_schema(request=None, responses={204: None, 401: schema.ErrorSerializer})
    def delete(self, request):
        if request.user is None:
            raise NotAuthenticated(_("Send the token to revoke: Authorization: Token …."))
        if isinstance(request.auth, Token):
            token_revoke(token=request.auth)
        else:  # a browser session: its user's token, if any
            for token in Token.objects.filter(user=request.user):
                token_revoke(token=token)
        return Response(status=204)


class InboxApi(APIView):
    """Resolves the advisor (and the sites in scope) once per request: with a token, the authentication's own
    query already loaded them (livechat.api.AdvisorTokenAuthentication)."""

    advisor = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        refuse_nul_in_query(request)
        self.advisor = selectors.advisor_for_user(request.user)
        if self.advisor is None:
            raise Forbidden(_("This account is not an advisor."))
        if self.advisor.language:  # a token client has no session for AdvisorLanguageMiddleware to read
            translation.activate(self.advisor.language)
            request.LANGUAGE_CODE = self.advisor.language


    def conversation(self, conversation_id):
        return selectors.conversation_for_advisor(advisor=self.advisor, conversation_id=conversation_id)

    def conversation_response(self, conversation_id) -> Response:
        conversation = self.conversation(conversation_id)
        return Response(conversation_dict(conversation, licensed=self.advisor.licensed,
                                          read_seq=conversation.read_seq, read_change=conversation.read_change))


def _int_param(request, name: str, default: int | None, *, low: int = 0, high: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Refused(_("%(name)s must be a whole number.") % {"name": name},
                      fields={name: [_("Not a whole number.")]}) from None
    value = max(low, value)
    return min(value, high) if high is not None else value


class MeApi(InboxApi):
    class MeInput(serializers.Serializer):
        name = serializers.CharField(max_length=100, required=False)
        email_on_escalation = serializers.BooleanField(required=False)
        sound = serializers.BooleanField(required=False)
        status = serializers.ChoiceField(choices=["online", "away"], required=False)
        # "" goes back to the browser's language
        language = serializers.ChoiceField(choices=[code for code, _ in settings.LANGUAGES], allow_blank=True,
                                           required=False)

    @extend_schema(responses={200: schema.MeSerializer})
    def get(self, request):
        return Response(self._me())

    @extend_schema(request=MeInput, responses={200: schema.MeSerializer})
    def patch(self, request):
        data = self.MeInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        if "status" in changes:
            routing_services.advisor_availability_set(advisor=self.advisor, status=changes.pop("status"))
        advisor_update_preferences(advisor=self.advisor, **changes)
        return Response(self._me())

    def _me(self) -> dict:
        advisor = self.advisor
        return {
            "username": advisor.username,
            "name": advisor.display_name,
            "email": advisor.email,
            "avatar_url": avatar_url(advisor),
            "licensed": advisor.licensed,
            "sees_chatbot": advisor.sees_chatbot,
            "sites": [{"key": s.key, "name": s.name, "color": s.color}
                      for s in sorted(advisor.site_by_id.values(), key=lambda site: site.name)],
            "email_on_escalation": advisor.email_on_escalation,
            "sound": advisor.sound,
            "language": advisor.language,
            "status": routing_selectors.advisor_status(advisor),
            "capacity": routing_selectors.advisor_rules(advisor).capacity,
        }


class ConversationListApi(InboxApi):
    @extend_schema(operation_id="inbox_conversations_list",
                   responses={200: schema.ConversationPageSerializer, **schema.ERRORS})
    def get(self, request):
        params = request.query_params
        limit = _int_param(request, "limit", 25, low=1, high=selectors.MAX_PAGE)
        page, next_cursor = selectors.conversation_list(
            advisor=self.advisor, box=params.get("box", "live"), filter=params.get("filter", "all"),
            assigned_to=params.get("advisor") or None, site_key=params.get("site") or None,
            cursor=params.get("cursor") or None, label=params.get("label") or None, limit=limit)
        licensed = self.advisor.licensed
        sites = selectors.sites_of(self.advisor, page)
        return Response({
            "results": [conversation_row_dict(row, site=sites[row["site_id"]], licensed=licensed) for row in page],
            "next": next_cursor,
            "counts": selectors.conversation_counts(advisor=self.advisor, site_key=params.get("site") or None),
        })


class ConversationDetailApi(InboxApi):
    @extend_schema(responses={200: schema.ConversationSerializer, 404: schema.ErrorSerializer})
    def get(self, request, conversation_id: int):
        return self.conversation_response(conversation_id)


class ReplyInput(serializers.Serializer):
    # Shapes only: the client_id and text rules (lengths, NUL) are the service's (services.client_id_clean,
    # message_text_clean), the same for the sockets.
    client_id = serializers.CharField(trim_whitespace=False)
    text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    kind = serializers.ChoiceField(choices=["text", "note"], default="text")


class MessagesApi(UploadGate, InboxApi):
    """A multipart reply (an image) is checked for size and the advisor's upload limit before its body is read
    (conversations.uploads); a JSON reply is not an upload."""

    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def upload_wait(self) -> float | None:
        return services.advisor_upload_wait(advisor_id=self.advisor.pk)

    @extend_schema(operation_id="inbox_conversation_messages_list",
                   responses={200: schema.MessageListSerializer, 404: schema.ErrorSerializer})
    def get(self, request, conversation_id: int):
        conversation = self.conversation(conversation_id)
        items = selectors.messages_for_advisor(
            advisor=self.advisor, conversation=conversation, after=_int_param(request, "after", 0),
            before=_int_param(request, "before", None), limit=_int_param(request, "limit", 50, low=1, high=200))
        return Response({"messages": [message_dict(m) for m in items]})

    @extend_schema(request={"application/json": ReplyInput, "multipart/form-data": schema.ImageUploadSerializer},
                   responses={201: schema.MessageEnvelopeSerializer, 200: schema.MessageEnvelopeSerializer,
                              **schema.ERRORS})
    def post(self, request, conversation_id: int):
        conversation = selectors.access_conversation(advisor=self.advisor, conversation_id=conversation_id,
                                                     for_write=True)
        data = ReplyInput(data=request.data)
        data.is_valid(raise_exception=True)
        upload = request.FILES.get("image")
        image = image_process(upload) if upload is not None else None
        text = data.validated_data.get("text", "")
        sent = services.advisor_message_send(
            conversation_id=conversation.pk, advisor=self.advisor, client_id=data.validated_data["client_id"],
            text=text, note=data.validated_data["kind"] == "note", image=image, checked=conversation)
        return Response({"message": message_dict(sent.message)}, status=201 if sent.created else 200)


class TakeApi(InboxApi):
    @extend_schema(request=None, responses={200: schema.ConversationSerializer, **schema.ERRORS})
    def post(self, request, conversation_id: int):
        conversation = self.conversation(conversation_id)
        services.conversation_take(conversation_id=conversation.pk, advisor=self.advisor)
        return self.conversation_response(conversation.pk)


class AssignApi(InboxApi):
    class AssignInput(serializers.Serializer):
        advisor = serializers.CharField(allow_null=True, allow_blank=True)

    @extend_schema(request=AssignInput, responses={200: schema.ConversationSerializer, **schema.ERRORS})
    def post(self, request, conversation_id: int):
        conversation = self.conversation(conversation_id)
        data = self.AssignInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.conversation_assign(conversation_id=conversation.pk, by=self.advisor,
                                     username=data.validated_data["advisor"] or None)
        return self.conversation_response(conversation.pk)


class CloseApi(InboxApi):
    @extend_schema(request=None, responses={200: schema.ConversationSerializer, **schema.ERRORS})
    def post(self, request, conversation_id: int):
        conversation = self.conversation(conversation_id)
        services.conversation_close(conversation_id=conversation.pk, advisor=self.advisor)
        return self.conversation_response(conversation.pk)


class ReopenApi(InboxApi):
    @extend_schema(request=None, responses={200: schema.ConversationSerializer, **schema.ERRORS})
    def post(self, request, conversation_id: int):
        conversation = self.conversation(conversation_id)
        services.conversation_reopen(conversation_id=conversation.pk, advisor=self.advisor)
        return self.conversation_response(conversation.pk)


class ReadApi(InboxApi):
    class ReadInput(serializers.Serializer):
        seq = serializers.IntegerField(min_value=0)

    @extend_schema(request=ReadInput, responses={200: schema.ConversationSerializer, **schema.ERRORS})
    def post(self, request, conversation_id: int):
        conversation_id = selectors.conversation_id_for_advisor(advisor=self.advisor, conversation_id=conversation_id)
        data = self.ReadInput(data=request.data)
        data.is_valid(raise_exception=True)
        read = services.conversation_read(conversation_id=conversation_id, advisor=self.advisor,
                                          seq=data.validated_data["seq"])
        return Response(conversation_dict(read.conversation, licensed=self.advisor.licensed, read_seq=read.seq,
                                          read_change=read.change))


class AdvisorListApi(InboxApi):
    @extend_schema(responses={200: schema.AdvisorSerializer(many=True)})
    def get(self, request):
        """Each advisor sharing a site with the caller: `status` (routing.presence), `sites` (those the caller sees
        too: the assign menu offers a conversation's site's advisors only) and `live` (assigned live ones)."""
        advisors = list(routing_selectors.advisors_with_live(selectors.assignable_advisors(advisor=self.advisor))
                        .select_related("routing").prefetch_related("sites"))
        statuses = routing_selectors.statuses(advisors)
        in_scope = set(self.advisor.site_ids)
        return Response([
            {"username": a.username, "name": a.display_name, "avatar_url": avatar_url(a), "licensed": a.licensed,
             "status": statuses[a.pk], "online": statuses[a.pk] == routing_selectors.ONLINE,
             "sites": sorted(s.key for s in a.sites.all() if s.pk in in_scope), "live": a.live}
            for a in advisors
        ])
