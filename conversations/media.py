"""Serves uploaded files. A note's image only reaches authenticated advisors who may see the note;
everything else is public under its unguessable name. Never sniffed as anything but what we re-encoded."""
import mimetypes
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404
from rest_framework.exceptions import AuthenticationFailed

from conversations import selectors
from conversations.errors import NotFound
from conversations.models import Message
from livechat.api import AdvisorTokenAuthentication


def _advisor(request):
    if request.user.is_authenticated:
        return selectors.advisor_for_user(request.user)
    try:
        found = AdvisorTokenAuthentication().authenticate(request)
    except AuthenticationFailed:
        return None
    return selectors.advisor_for_user(found[0]) if found else None


def media(request, path: str):
    root = Path(settings.MEDIA_ROOT).resolve()
    file_path = (root / path).resolve()
    if root not in file_path.parents or not file_path.is_file():
        raise Http404
    if path.startswith("conversations/"):
        message = Message.objects.filter(image=path).only("kind", "conversation_id").first()
        if message is None:
            raise Http404
        if message.kind == Message.Kind.NOTE:
            # A note's image: the same access check as the note itself (the conversation, then the license).
            advisor = _advisor(request)
            if advisor is None or not selectors.advisor_sees_notes(advisor):
                raise Http404
            try:
                selectors.access_conversation(advisor=advisor, conversation_id=message.conversation_id,
                                              for_write=True)
            except NotFound:
                raise Http404 from None
    content_type = mimetypes.guess_type(file_path.name)[0] or "application/octet-stream"
    response = FileResponse(open(file_path, "rb"), content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    private = path.startswith("conversations/")
    response["Cache-Control"] = "private, max-age=86400" if private else "public, max-age=3600"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response
