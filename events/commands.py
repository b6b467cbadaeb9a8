"""Management commands that change something run as an operator (`via=cli`, actor `operator`)."""

from typing import Any

from django.core.management.base import BaseCommand

from events.context import operator_context


class OperatorCommand(BaseCommand):
    """A `BaseCommand` whose events are the operator's: every write command of the project derives from it."""

    def execute(self, *args: Any, **options: Any) -> str | None:
        with operator_context():
            return super().execute(*args, **options)
