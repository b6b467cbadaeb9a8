"""Forms helpers shared by the admin's pages: services refuse with ApplicationError, forms show it."""

from collections.abc import Mapping, Sequence

from django import forms

from portalsite.errors import ApplicationError


def form_errors_from(
    form: forms.Form, exc: ApplicationError, *, fields: Mapping[str, str] | None = None, labels: Sequence[str] = ()
) -> None:
    """Put a service's refusal on the form: each field error on its field (`fields` renames service
    locations to form fields), the rest as form-wide errors. `labels` names the rows of a list input,
    so ("users", 3, "email") reads "line 4: ..."."""
    fields = fields or {}
    if not exc.field_errors:
        form.add_error(None, exc.message)
        return
    for error in exc.field_errors:
        loc = list(error.loc)
        if len(loc) >= 2 and isinstance(loc[1], int) and loc[1] < len(labels):
            form.add_error(None, f"{labels[loc[1]]}: {error.msg}")
            continue
        name = fields.get(str(loc[0]), str(loc[0])) if loc else ""
        form.add_error(name if name in form.fields else None, error.msg)
