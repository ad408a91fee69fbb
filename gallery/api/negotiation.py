from rest_framework.negotiation import DefaultContentNegotiation


class ImageDownloadNegotiation(DefaultContentNegotiation):
    """For views that answer with image bytes, whatever the client's Accept header asks for.

    The first renderer (JSON) is used for their errors only; without this, `Accept: image/png`
    would be refused with 406 before the view runs.
    """

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
