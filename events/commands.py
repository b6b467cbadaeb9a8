"""Management commands that change something run as an operator (`via=cli`, actor `operator`)."""

from typing import Any

from django.core.management.base import BaseCommand

from events.context import operator_context


class OperatorCommand(BaseCommand):
    """A `BaseCommand` whose events are the operator's. The commands that change portals and their people
    derive from it (`create_org`, in accounts below this app, records no event)."""

    def execute(self, *args: Any, **options: Any) -> str | None:
        with operator_context():
            return super().execute(*args, **options)
