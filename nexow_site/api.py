"""The API root: a small index of what the caller can reach."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.reverse import reverse


@extend_schema(
    summary="API root",
    responses=inline_serializer(
        "ApiRoot",
        {"version": serializers.CharField(), "schema": serializers.URLField(),
         "docs": serializers.URLField(), "organizations": serializers.CharField()},
    ),
    auth=[],
)
@api_view(["GET"])
@permission_classes([AllowAny])
def api_root(request):
    return Response({
        "version": "v1",
        "schema": reverse("schema", request=request),
        "docs": reverse("swagger-ui", request=request),
        "organizations": request.build_absolute_uri("/api/v1/orgs/{org_slug}/"),
    })
