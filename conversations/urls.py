from django.urls import path

from conversations import api, media

conversation = "api/inbox/conversations/<int:conversation_id>"

urlpatterns = [
    path("media/<path:path>", media.media, name="media"),
    path("api/auth/token", api.TokenApi.as_view(), name="auth-token"),
    path("api/inbox/me", api.MeApi.as_view(), name="inbox-me"),
    path("api/inbox/advisors", api.AdvisorListApi.as_view(), name="inbox-advisors"),
    path("api/inbox/conversations", api.ConversationListApi.as_view(), name="inbox-conversations"),
    path(conversation, api.ConversationDetailApi.as_view(), name="inbox-conversation"),
    path(f"{conversation}/messages", api.MessagesApi.as_view(), name="inbox-messages"),
    path(f"{conversation}/take", api.TakeApi.as_view(), name="inbox-take"),
    path(f"{conversation}/assign", api.AssignApi.as_view(), name="inbox-assign"),
    path(f"{conversation}/close", api.CloseApi.as_view(), name="inbox-close"),
    path(f"{conversation}/reopen", api.ReopenApi.as_view(), name="inbox-reopen"),
    path(f"{conversation}/read", api.ReadApi.as_view(), name="inbox-read"),
]
