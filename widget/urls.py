from django.urls import path

from widget import api, views

urlpatterns = [
    path("widget.js", views.widget_js, name="widget-js"),
    path("demo/", views.demo, name="demo"),
    path("api/widget/sessions", api.SessionStartApi.as_view(), name="widget-sessions"),
    path("api/widget/messages", api.MessageListApi.as_view(), name="widget-messages"),
    path("api/widget/images", api.ImageUploadApi.as_view(), name="widget-images"),
]
