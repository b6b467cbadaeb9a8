from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portals.models import Portal
from portals.provisioning import spare_pool_refill


class Command(BaseCommand):
    help = "Top the pool of pre-migrated spare portal schemas up to --size (default PORTAL_SPARE_POOL_SIZE)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--size", type=int, help="spares to keep ready (default PORTAL_SPARE_POOL_SIZE)")

    def handle(self, *args: Any, **options: Any) -> None:
        size = settings.PORTAL_SPARE_POOL_SIZE if options["size"] is None else options["size"]
        if size < 0:
            raise CommandError("--size must not be negative")
        created = spare_pool_refill(size=size)
        spares = Portal.objects.filter(is_spare=True).count()
        self.stdout.write(self.style.SUCCESS(f"Created {created} spare schema(s); the pool now holds {spares}."))
        if spares < size:
            # spare_pool_refill returns at once while another process holds the refill lock.
            self.stderr.write(f"The pool is below {size}: another refill is running; try again when it is done.")
