"""Progress bars for management commands."""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from django.core.management.base import OutputWrapper
from tqdm import tqdm

T = TypeVar("T")


@contextmanager
def progress_bar(
    items: Iterable[T] | None, *, stream: OutputWrapper, unit: str, total: int | None = None
) -> Iterator[tqdm]:
    """A tqdm bar on a command's stream (only drawn at a terminal); over `items`, or updated by hand (None).

    tqdm redraws with '\\r', so while it runs the wrapper must neither end each write with a
    newline nor colour it (Django styles stderr as an error at a terminal).
    """
    ending, style_func = stream.ending, stream.style_func
    stream.ending, stream.style_func = "", None
    try:
        with tqdm(items, unit=unit, total=total, file=stream, disable=None) as bar:
            yield bar
    finally:
        stream.ending, stream.style_func = ending, style_func
