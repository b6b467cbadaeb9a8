"""Custom domains are proven by a DNS TXT record before they route or appear in a link.

Setting a custom domain makes it `pending` with a random token; the org publishes
`_portalsite-challenge.<domain> TXT <token>`. `custom_domain_verify` looks it up now (the API's
verify call, the admin's "check now", `verify_domains`); `custom_domains_verify_pending` checks
every pending one and fails those pending longer than DOMAIN_VERIFY_TIMEOUT (the periodic job
and the `verify_domains` command call it).

Lookups go through dnspython: the servers in DNS_RESOLVERS (`host[:port],...`), else the
system resolver. The lookup runs outside any transaction (no row lock held over the network);
its result is written only if the domain still has the token that was looked up.
"""

import logging
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import dns.exception
import dns.resolver
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from events.services import Target, record
from portals.models import Domain, Portal
from portals.routing import routing_forget_on_commit
from portalsite.dns import resolver

logger = logging.getLogger(__name__)

CHALLENGE_LABEL = "_portalsite-challenge"
_ERROR_MAX = 500  # Domain.verification_error


def www_twin(hostname: str) -> str:
    """`www.x` for `x`, and `x` for `www.x`: the two are one name (API.md "Custom domains")."""
    return hostname[4:] if hostname.startswith("www.") else f"www.{hostname}"


def challenge_name(hostname: str) -> str:
    return f"{CHALLENGE_LABEL}.{hostname}"


def custom_domain_pending_fields() -> dict[str, Any]:
    """The verification state of a custom domain that has just been set: pending, with a fresh token."""
    return {
        "verification_status": Domain.VerificationStatus.PENDING,
        "verification_token": secrets.token_urlsafe(24),
        "verification_started_at": timezone.now(),
        "verification_checked_at": None,
        "verification_error": "",
    }


def txt_lookup_error(*, hostname: str, token: str) -> str:
    """ "" when `_portalsite-challenge.<hostname>` has a TXT record whose value is `token`, else what was found."""
    name = challenge_name(hostname)
    try:
        answer = resolver().resolve(name, "TXT", search=False)
    except dns.resolver.NXDOMAIN:
        return f"{name} does not exist (NXDOMAIN): publish the TXT record."
    except dns.resolver.NoAnswer:
        return f"{name} exists but has no TXT record."
    except dns.resolver.LifetimeTimeout:
        return f"The DNS lookup of {name} timed out after {settings.DNS_TIMEOUT:g} s; it will be tried again."
    except dns.resolver.NoNameservers:
        return f"No DNS server could answer for {name} (SERVFAIL or refused); it will be tried again."
    except dns.exception.DNSException as exc:
        return f"The DNS lookup of {name} failed: {exc}"
    values = [b"".join(record.strings).decode(errors="replace") for record in answer]
    if token in values:
        return ""
    found = ", ".join(repr(value) for value in values)
    return f"{name} has TXT {found}, not the expected value."[:_ERROR_MAX]


@transaction.atomic
def _record_check(*, domain_id: int, token: str, error: str, now: datetime, fail_stale: bool) -> Domain | None:
    """Store a lookup's result, if the domain still has the token that was looked up (lock: the row)."""
    domain = (
        Domain.objects.select_for_update(of=("self",))
        .select_related("tenant")
        .filter(pk=domain_id, verification_token=token)
        .first()
    )
    if domain is None:
        return None  # removed or changed while we looked: that lookup proves nothing any more
    before = domain.verification_status
    domain.verification_checked_at = now
    domain.verification_error = error[:_ERROR_MAX]
    if not error:
        domain.verification_status = Domain.VerificationStatus.VERIFIED
    elif fail_stale and before == Domain.VerificationStatus.PENDING:
        started = domain.verification_started_at or now
        if now - started >= settings.DOMAIN_VERIFY_TIMEOUT:
            domain.verification_status = Domain.VerificationStatus.FAILED
            days = settings.DOMAIN_VERIFY_TIMEOUT.total_seconds() / 86400
            domain.verification_error = f"Not verified within {days:g} days. Last check: {error}"[:_ERROR_MAX]
    # An UPDATE, not save(): DomainMixin.save re-checks the primary domain with two more queries.
    Domain.objects.filter(pk=domain.pk).update(
        verification_status=domain.verification_status,
        verification_checked_at=domain.verification_checked_at,
        verification_error=domain.verification_error,
    )
    if domain.verification_status != before:
        routing_forget_on_commit([domain.domain])  # a "no portal here" answer must not outlive the proof
        _record_status(domain, before)
        logger.info("custom domain %s (portal %s): %s -> %s", domain.domain, domain.tenant_id, before,
                    domain.verification_status)  # fmt: skip
    return domain


def _record_status(domain: Domain, before: str) -> None:
    """`portal.custom_domain.verified` or `.failed` (a domain becomes nothing else through a check)."""
    portal = domain.tenant
    assert portal.organization_id is not None
    record(
        action=f"portal.custom_domain.{domain.verification_status}",
        organization_id=portal.organization_id,
        portal_id=portal.id,
        target=Target(type="domain", id=str(domain.pk), label=domain.domain),
        changes={"verification_status": [before, domain.verification_status]},
    )


def custom_domain_verify(*, portal: Portal) -> Domain | None:
    """Look the portal's TXT record up now and store the outcome; None when the portal has no custom domain.

    Works on pending, failed and verified domains alike: a found record verifies; a missing one is
    reported in `verification_error` and changes no state (a proof once made stands: only a changed
    domain needs a new one; a pending one fails only in the background check, after the timeout).
    """
    domain = Domain.objects.filter(tenant=portal, is_custom=True).first()
    if domain is None:
        return None
    error = txt_lookup_error(hostname=domain.domain, token=domain.verification_token)
    recorded = _record_check(
        domain_id=domain.pk, token=domain.verification_token, error=error, now=timezone.now(), fail_stale=False
    )
    return recorded or Domain.objects.filter(tenant=portal, is_custom=True).first()


@dataclass
class DomainCheckSummary:
    checked: int = 0
    verified: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    still_pending: list[str] = field(default_factory=list)


def custom_domains_verify_pending(*, portal_id: uuid.UUID | None = None) -> DomainCheckSummary:
    """Check every pending custom domain (or one portal's) now; fail those pending past DOMAIN_VERIFY_TIMEOUT.

    Idempotent and safe to run from several processes at once: each result is written under the
    domain's row lock and only while the domain still has the token that was looked up. This is the
    whole body of the periodic job (every DOMAIN_CHECK_INTERVAL seconds) and of `verify_domains`.
    """
    pending = Domain.objects.filter(
        is_custom=True, verification_status=Domain.VerificationStatus.PENDING, tenant__is_spare=False
    )
    if portal_id is not None:
        pending = pending.filter(tenant_id=portal_id)
    summary = DomainCheckSummary()
    for domain_id, hostname, token in pending.order_by("verification_started_at", "pk").values_list(
        "pk", "domain", "verification_token"
    ):
        error = txt_lookup_error(hostname=hostname, token=token)
        recorded = _record_check(domain_id=domain_id, token=token, error=error, now=timezone.now(), fail_stale=True)
        if recorded is None:
            continue
        summary.checked += 1
        bucket = {
            Domain.VerificationStatus.VERIFIED: summary.verified,
            Domain.VerificationStatus.FAILED: summary.failed,
        }.get(Domain.VerificationStatus(recorded.verification_status), summary.still_pending)
        bucket.append(hostname)
    return summary
