from django.urls import path

from advisors import views

urlpatterns = [
    path("invitations/<str:token>", views.invitation_accept, name="invitation-accept"),
]
