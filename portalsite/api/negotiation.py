from collections.abc import Iterable

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

_ANY_JSON = frozenset({"", "*/*", "application/json"})


class JSONContentNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, with a shortcut for what API clients send nearly always (no Accept, `*/*` or
    `application/json`) when JSON is the one renderer; anything else is negotiated as before (406s included)."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderers = list(renderers)  # DRF passes a list: copying one item costs nothing
        accept = request.META.get("HTTP_ACCEPT", "")
        plain = len(renderers) == 1 and not format_suffix and self.settings.URL_FORMAT_OVERRIDE not in request.GET
        if plain and accept in _ANY_JSON:
            return renderers[0], renderers[0].media_type
        chosen: tuple[BaseRenderer, str] = super().select_renderer(request, renderers, format_suffix)
        return chosen
