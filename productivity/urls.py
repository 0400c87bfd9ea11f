from django.urls import path

from productivity import api

conversation = "api/inbox/conversations/<int:conversation_id>"

urlpatterns = [
    path("api/inbox/canned", api.CannedListApi.as_view(), name="inbox-canned"),
    path("api/inbox/canned/<int:canned_id>", api.CannedDetailApi.as_view(), name="inbox-canned-detail"),
    path("api/inbox/labels", api.LabelListApi.as_view(), name="inbox-labels"),
    path("api/inbox/labels/<str:name>", api.LabelDetailApi.as_view(), name="inbox-label"),
    path(f"{conversation}/labels", api.ConversationLabelsApi.as_view(), name="inbox-conversation-labels"),
    path(f"{conversation}/transcript", api.TranscriptApi.as_view(), name="inbox-transcript"),
    path("api/inbox/search", api.SearchApi.as_view(), name="inbox-search"),
    path("api/widget/transcript", api.WidgetTranscriptApi.as_view(), name="widget-transcript"),
]
