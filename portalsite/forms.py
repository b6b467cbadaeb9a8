"""Forms helpers shared by the admin's pages: services refuse with ApplicationError, forms show it."""

from collections.abc import Mapping, Sequence
from typing import Any

from django import forms
from django.contrib.admin import ModelAdmin, helpers

from portalsite.errors import ApplicationError


def admin_form(model_admin: ModelAdmin[Any], form: forms.Form) -> helpers.AdminForm:
    """A plain form laid out as the admin lays out a model's (one fieldset, every field)."""
    # The admin's helpers only read the form's fields and errors: a plain Form serves as well as a ModelForm.
    return helpers.AdminForm(form, [(None, {"fields": list(form.fields)})], {}, model_admin=model_admin)  # type: ignore[arg-type]


def admin_form_errors(form: forms.Form) -> helpers.AdminErrorList:
    return helpers.AdminErrorList(form, [])  # type: ignore[arg-type]  # as above


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
