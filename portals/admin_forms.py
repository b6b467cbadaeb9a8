"""Admin forms for portals. They parse and shape input only: the services decide, and their
ApplicationErrors come back onto the form through `portalsite.forms.form_errors_from`."""

from typing import Any

from django import forms
from django.db.models import QuerySet

from accounts.models import Organization


class PortalCreateForm(forms.Form):
    organization = forms.ModelChoiceField(queryset=Organization.objects.none(), empty_label=None)
    name = forms.CharField(max_length=100)
    slug = forms.CharField(
        max_length=63,
        required=False,
        help_text="The portal's host label (3-63 lower-case letters, digits and hyphens). "
        "Left empty, it is made from the name.",
    )
    custom_domain = forms.CharField(
        max_length=253, required=False, help_text="Optional: an extra host name, e.g. portal.example.com."
    )

    def __init__(self, *args: Any, organizations: QuerySet[Organization], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["organization"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = organizations.order_by("name")


class PortalChangeForm(forms.Form):
    name = forms.CharField(max_length=100)
    custom_domain = forms.CharField(
        max_length=253, required=False, help_text="An extra host name, e.g. portal.example.com. Empty removes it."
    )
