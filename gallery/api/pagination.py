from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination


class PhotoPagination(PageNumberPagination):
    """Pages of 24; `page` and `page_size` are positive integers, anything else is a 400 `invalid`.

    DRF would silently take a malformed `page_size` for the default and `?page=` or `?page=last`
    for a page, although the schema says integer; a page past the end is still a 404.
    """

    page_size = 24  # as the gallery page
    page_size_query_param = "page_size"
    max_page_size = 100
    last_page_strings = ()

    def get_page_size(self, request):
        size = self._positive_int(request, self.page_size_query_param)
        return self.page_size if size is None else min(size, self.max_page_size)

    def get_page_number(self, request, paginator):
        number = self._positive_int(request, self.page_query_param)
        return 1 if number is None else number

    def _positive_int(self, request, name):
        if name not in request.query_params:
            return None
        try:
            return serializers.IntegerField(min_value=1).run_validation(request.query_params[name])
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({name: exc.detail}) from exc

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["description"] = (
                    f"Number of results to return per page: {self.page_size} if not given, "
                    f"at most {self.max_page_size} (a larger number gives {self.max_page_size})."
                )
        return parameters
