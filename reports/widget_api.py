"""POST /api/widget/rating (CONTRACT section 7): the visitor's bearer token, the site's origins, like every
widget endpoint (widget.api.WidgetApi)."""
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from livechat import schema
from reports import services
from widget.api import WidgetApi


class RatingApi(WidgetApi):
    parser_classes = [JSONParser]

    @extend_schema(request=inline_serializer("RatingInput", {
                       "score": serializers.IntegerField(min_value=1, max_value=5),
                       "comment": serializers.CharField(required=False)}),
                   responses={201: inline_serializer("RatingOutput", {"rating": serializers.DictField()}),
                              **schema.ERRORS})
    def post(self, request):
        visitor = self.visitor()
        data = request.data if isinstance(request.data, dict) else {}
        rating = services.rating_create(visitor=visitor, score=data.get("score"), comment=data.get("comment"))
        return Response({"rating": {"score": rating.score, "comment": rating.comment}}, status=201)
