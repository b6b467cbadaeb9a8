"""Checking invite rows (e-mail, name, role) typed or uploaded by a person, and the allowed-domain rule.

The admin's paste/CSV form and the `invite_portal_users` command report every bad row before inviting
anyone; the invite services apply the same allowed-domain rule to what the API sends.
"""

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from customer_portal.models import PortalUser

# The PortalUser column sizes: a longer value would fail the insert half-way through a batch.
MAX_EMAIL_LENGTH = PortalUser._meta.get_field("email").max_length or 254
MAX_NAME_LENGTH = PortalUser._meta.get_field("name").max_length or 150
INVITE_COLUMNS = ("email", "name", "role")


@dataclass(frozen=True)
class InviteEntry:
    email: str
    name: str = ""
    role: str = PortalUser.Role.MEMBER


def email_domain_refusal(email: str, allowed_domains: Collection[str]) -> str | None:
    """Why `email` may not be invited where only `allowed_domains` are (empty: every domain is), or None;
    in the words of a row problem (lower case, no full stop)."""
    allowed = {domain.lower() for domain in allowed_domains}
    if not allowed or email.rsplit("@", 1)[-1].lower() in allowed:
        return None
    return f"only addresses at {', '.join(sorted(allowed))} may be invited"


def invite_row_problems(*, email: str, name: str, role: str, allowed_domains: Collection[str] = ()) -> list[str]:
    """What is wrong with one row, in words for the person who wrote it (empty: nothing)."""
    problems = []
    try:
        validate_email(email)
    except ValidationError:
        problems.append(f"{email!r} is not a valid e-mail address")
    else:
        refusal = email_domain_refusal(email, allowed_domains)
        if len(email) > MAX_EMAIL_LENGTH:
            problems.append(f"the e-mail is longer than {MAX_EMAIL_LENGTH} characters")
        elif refusal is not None:
            problems.append(refusal)
    if len(name) > MAX_NAME_LENGTH:
        problems.append(f"the name is longer than {MAX_NAME_LENGTH} characters")
    if role not in PortalUser.Role.values:
        problems.append(f"role {role!r} is not one of {', '.join(PortalUser.Role.values)}")
    return problems


@dataclass
class CheckedRows:
    """Entries for the good rows (a repeated e-mail keeps its first row), where each came from, and one
    message per bad row."""

    entries: list[InviteEntry] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    repeated: int = 0


def invite_rows_check(
    rows: Iterable[tuple[str, Sequence[str]]], *, allowed_domains: Collection[str] = ()
) -> CheckedRows:
    """Check `(label, [email, name, role, ...])` rows; every bad row is reported, none is skipped silently."""
    checked = CheckedRows()
    seen: set[str] = set()
    for label, fields in rows:
        email, name, role = [*(value.strip() for value in fields), "", "", ""][:3]
        role = role.lower() or PortalUser.Role.MEMBER
        problems = ["more values than email,name,role"] if any(value.strip() for value in fields[3:]) else []
        problems += invite_row_problems(email=email, name=name, role=role, allowed_domains=allowed_domains)
        if problems:
            checked.errors.append(f"{label}: {'; '.join(problems)}")
        elif email.lower() in seen:
            checked.repeated += 1
        else:
            seen.add(email.lower())
            checked.entries.append(InviteEntry(email=email, name=name, role=role))
            checked.labels.append(f"{label} ({email})")
    return checked
