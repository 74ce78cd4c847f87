"""Page-number pagination with a bounded, caller-chosen page size."""

from rest_framework.pagination import PageNumberPagination


class CursorlessPageNumberPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 1000
