from rest_framework.pagination import PageNumberPagination


class PhotoPagination(PageNumberPagination):
    page_size = 24  # as the gallery page
    page_size_query_param = "page_size"
    max_page_size = 100
