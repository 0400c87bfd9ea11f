"""OpenAPI shapes of CONTRACT section 3, for drf-spectacular. The answers themselves are built by
conversations.presenters (one builder for REST and frames); these classes only describe them."""
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    fields = serializers.DictField(required=False)


class ButtonSerializer(serializers.Serializer):
    id = serializers.CharField()
    label = serializers.CharField()


class InputSerializer(serializers.Serializer):
    variable = serializers.CharField()
    type = serializers.ChoiceField(choices=["text", "email", "number"])


class PersonSerializer(serializers.Serializer):
    name = serializers.CharField()
    avatar_url = serializers.URLField(allow_null=True)


class AuthorSerializer(serializers.Serializer):
    username = serializers.CharField()
    name = serializers.CharField()


class MessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    conversation = serializers.IntegerField()
    seq = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=["text", "image", "note", "event"])
    sender = serializers.ChoiceField(choices=["visitor", "bot", "advisor", "system"])
    text = serializers.CharField()
    image_url = serializers.URLField(allow_null=True)
    buttons = ButtonSerializer(many=True)
    input = InputSerializer(allow_null=True)
    advisor = PersonSerializer(allow_null=True)
    author = AuthorSerializer(allow_null=True)
    client_id = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


class MessageEnvelopeSerializer(serializers.Serializer):
    message = MessageSerializer()


class MessageListSerializer(serializers.Serializer):
    messages = MessageSerializer(many=True)


class SiteRefSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()


class VisitorSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    online = serializers.BooleanField()
    sessions = serializers.IntegerField()
    page = serializers.URLField(allow_null=True)
    first_seen = serializers.DateTimeField()
    variables = serializers.DictField(child=serializers.CharField())


class AssignedSerializer(AuthorSerializer):
    avatar_url = serializers.URLField(allow_null=True)


class ConversationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    site = SiteRefSerializer()
    status = serializers.ChoiceField(choices=["bot", "live", "closed"])
    visitor = VisitorSerializer()
    assigned = AssignedSerializer(allow_null=True)
    last_message = MessageSerializer(allow_null=True)
    unread = serializers.BooleanField()
    unanswered = serializers.BooleanField()
    waiting_since = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)


class CountsSerializer(serializers.Serializer):
    live = serializers.IntegerField()
    closed = serializers.IntegerField()
    chatbot = serializers.IntegerField()
    unassigned = serializers.IntegerField()
    unread = serializers.IntegerField()
    mine = serializers.IntegerField()
    to_process = serializers.IntegerField()


class ConversationPageSerializer(serializers.Serializer):
    results = ConversationSerializer(many=True)
    next = serializers.CharField(allow_null=True)
    counts = CountsSerializer()


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    name = serializers.CharField()
    email = serializers.EmailField()
    avatar_url = serializers.URLField(allow_null=True)
    licensed = serializers.BooleanField()
    sees_chatbot = serializers.BooleanField()
    sites = SiteRefSerializer(many=True)
    email_on_escalation = serializers.BooleanField()
    sound = serializers.BooleanField()
    language = serializers.ChoiceField(choices=["", "en", "fr"], help_text="\"\": the browser's language.")
    status = serializers.ChoiceField(choices=["online", "away", "offline"])
    capacity = serializers.IntegerField()


class AdvisorSerializer(AssignedSerializer):
    licensed = serializers.BooleanField()
    online = serializers.BooleanField()
    status = serializers.ChoiceField(choices=["online", "away", "offline"])
    sites = serializers.ListField(child=serializers.CharField())
    live = serializers.IntegerField()


class WidgetConversationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["bot", "live", "closed"])
    advisor = PersonSerializer(allow_null=True)
    back_to_bot = serializers.DictField(allow_null=True)


class WidgetSiteSerializer(serializers.Serializer):
    name = serializers.CharField()
    color = serializers.CharField()
    mode = serializers.ChoiceField(choices=["chatbot", "livechat"])


class WidgetSessionSerializer(serializers.Serializer):
    token = serializers.CharField()
    visitor = serializers.DictField()
    conversation = WidgetConversationSerializer()
    site = WidgetSiteSerializer()


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()


class ImageUploadSerializer(serializers.Serializer):
    image = serializers.ImageField()
    client_id = serializers.CharField(max_length=64)
    kind = serializers.ChoiceField(choices=["text", "note"], required=False)


ERRORS = {400: ErrorSerializer, 401: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer,
          409: ErrorSerializer}
