"""Admin forms for one portal's people and settings. They parse and shape input only: the services decide,
and their ApplicationErrors come back onto the form through `portalsite.forms.form_errors_from`."""

import csv
import io
import re
from collections.abc import Mapping
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile

from customer_portal.api.serializers import MAX_INVITES_PER_REQUEST, PortalConfigUpdateInput
from customer_portal.invite_rows import INVITE_COLUMNS, invite_rows_check
from customer_portal.models import PortalSettings

MAX_CSV_BYTES = 2 * 1024 * 1024


class PortalUsersInviteForm(forms.Form):
    emails = forms.CharField(
        label="E-mail addresses",
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 70, "placeholder": "ada@example.com\nbob@example.com,Bob"}),
        help_text="One per line; optionally email,name,role (role: member or manager).",
    )
    csv_file = forms.FileField(
        label="Or a CSV file",
        required=False,
        help_text="Columns email,name,role (name and role optional); a header line is optional.",
    )
    send_email = forms.BooleanField(
        label="Send invitation e-mails", required=False, initial=True, help_text="Unticked, nobody is e-mailed."
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        rows: list[tuple[str, list[str]]] = []
        if cleaned.get("emails"):
            rows += _pasted_rows(cleaned["emails"])
        if cleaned.get("csv_file"):
            rows += _csv_rows(cleaned["csv_file"])
        if not rows:
            raise ValidationError("Paste at least one e-mail address or choose a CSV file.")
        checked = invite_rows_check(rows)
        if checked.errors:
            raise ValidationError(checked.errors)
        if len(checked.entries) > MAX_INVITES_PER_REQUEST:
            raise ValidationError(f"At most {MAX_INVITES_PER_REQUEST} people at a time; split the list.")
        cleaned["rows"] = checked
        return cleaned


def _pasted_rows(text: str) -> list[tuple[str, list[str]]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = [field.strip() for field in next(csv.reader([line]))]
        if number == 1 and fields[0].lower() == "email":
            continue  # a pasted header line
        rows.append((f"Line {number}", fields))
    return rows


def _csv_rows(upload: UploadedFile[bytes]) -> list[tuple[str, list[str]]]:
    if upload.size is not None and upload.size > MAX_CSV_BYTES:
        raise ValidationError(f"The CSV file is larger than {MAX_CSV_BYTES // (1024 * 1024)} MB.")
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark.
        text = upload.read().decode("utf-8-sig")
        records = list(csv.reader(io.StringIO(text, newline="")))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValidationError(f"The file is not a readable UTF-8 CSV file ({exc}).") from exc
    rows = []
    columns: list[str] = list(INVITE_COLUMNS)
    for number, record in enumerate(records, start=1):
        fields = [field.strip() for field in record]
        if not any(fields):
            continue
        if number == 1 and fields[0].lower() in INVITE_COLUMNS:
            columns = [field.lower() for field in fields]
            unknown = [column for column in columns if column not in INVITE_COLUMNS]
            if unknown or "email" not in columns:
                raise ValidationError(
                    "The CSV header must name the columns email, name and role (name and role optional)."
                )
            continue
        if columns != list(INVITE_COLUMNS):
            # Put the values in email,name,role order; extra values beyond the header stay at the end.
            named = dict(zip(columns, fields, strict=False))
            fields = [named.get(column, "") for column in INVITE_COLUMNS] + fields[len(columns) :]
        rows.append((f"CSV line {number}", fields))
    return rows


class PortalSettingsForm(forms.Form):
    """The portal's settings; the API's own input serializer validates the values (see `config_changes`)."""

    display_name = forms.CharField(required=False, max_length=100)
    logo_url = forms.CharField(label="Logo URL", required=False, max_length=500, help_text="An http(s) URL.")
    primary_color = forms.CharField(
        label="Primary colour", max_length=7, widget=forms.TextInput(attrs={"type": "color"})
    )
    welcome_message = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 4}))
    support_email = forms.CharField(label="Support e-mail", required=False, max_length=254)
    allowed_email_domains = forms.CharField(
        label="Allowed e-mail domains",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 40}),
        help_text="One per line. Only addresses at these domains may be invited; empty allows any.",
    )
    session_timeout_minutes = forms.IntegerField(
        label="Session timeout (minutes)", help_text="How long a portal login lasts without activity."
    )

    @staticmethod
    def initial_from(portal_settings: PortalSettings) -> dict[str, Any]:
        return {
            name: getattr(portal_settings, name)
            for name in PortalSettingsForm.base_fields
            if name != "allowed_email_domains"
        } | {"allowed_email_domains": "\n".join(portal_settings.allowed_email_domains)}

    def config_changes(self, current: PortalSettings) -> dict[str, Any] | None:
        """The validated values that differ from `current`, or None with the errors on the form."""
        data = dict(self.cleaned_data)
        # Split and dedupe as the serializer would, so its per-item errors index this list.
        domains = (part.strip().lower().lstrip("@") for part in re.split(r"[\n,;]+", data["allowed_email_domains"]))
        data["allowed_email_domains"] = list(dict.fromkeys(domain for domain in domains if domain))
        serializer = PortalConfigUpdateInput(data=data)
        if not serializer.is_valid():
            for name, problems in serializer.errors.items():
                for message in _flat_messages(problems, values=data.get(name)):
                    self.add_error(name if name in self.fields else None, message)
            return None
        return {name: value for name, value in serializer.validated_data.items() if getattr(current, name) != value}


def _flat_messages(problems: Any, *, values: Any) -> list[str]:
    """DRF errors for one field as plain messages; a list field's errors name the offending item."""
    if isinstance(problems, Mapping):
        return [
            f"{values[int(index)] if isinstance(values, list) else index}: {message}"
            for index, messages in problems.items()
            for message in _flat_messages(messages, values=None)
        ]
    if isinstance(problems, list):
        return [str(problem) for problem in problems]
    return [str(problems)]
