"""portalsite.requests: the one place that reaches into DRF's Request for Django's."""

from django.test import RequestFactory
from rest_framework.request import Request

from portalsite.requests import django_request, request_memo


def test_a_drf_request_gives_the_django_request_it_wraps():
    http_request = RequestFactory().get("/")

    assert django_request(Request(http_request)) is http_request
    assert django_request(http_request) is http_request


def test_the_memo_computes_once_per_request_and_is_shared_by_both_kinds():
    http_request = RequestFactory().get("/")
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    first = request_memo(http_request, "answer", compute)
    again = request_memo(Request(http_request), "answer", compute)  # the same request, seen through DRF
    other_key = request_memo(http_request, "other", compute)
    other_request = request_memo(RequestFactory().get("/"), "answer", compute)

    assert (first, again, other_key, other_request) == (1, 1, 2, 3)
