"""The forms of the pages on a portal host (customer_portal.pages): fields and their own checks only."""

from typing import Any

from django import forms

from accounts.api.serializers import PASSWORD_MAX_LENGTH

PASSWORDS_DIFFER = "The two passwords do not match."


def _password(label: str, autocomplete: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=PASSWORD_MAX_LENGTH,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": autocomplete}),
    )


def _email(*, autofocus: bool = True) -> forms.CharField:
    # A CharField: a malformed address must get the same answer as an unknown one.
    attrs = {"autocomplete": "email", **({"autofocus": "autofocus"} if autofocus else {})}
    return forms.CharField(label="E-mail address", max_length=254, widget=forms.EmailInput(attrs=attrs))


class NewPasswordForm(forms.Form):
    """A new password, twice."""

    password = _password("New password", "new-password")
    password_confirm = _password("Repeat the password", "new-password")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        password, confirm = cleaned.get("password"), cleaned.get("password_confirm")
        if "password_confirm" in self.fields and password is not None and confirm is not None and password != confirm:
            self.add_error("password_confirm", PASSWORDS_DIFFER)
        return cleaned


class InvitationAcceptForm(NewPasswordForm):
    """Name and a new password (twice) for a new account; only the password for an existing one."""

    name = forms.CharField(label="Your name", max_length=150)
    field_order = ["name", "password", "password_confirm"]

    def __init__(self, *args: Any, existing_account: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.existing_account = existing_account
        self.fields["password"].label = "Choose a password"
        if existing_account:
            del self.fields["name"]
            del self.fields["password_confirm"]
            self.fields["password"].label = "Password of your account"
            self.fields["password"].widget.attrs["autocomplete"] = "current-password"


class PasswordChangeForm(NewPasswordForm):
    current_password = _password("Current password", "current-password")
    field_order = ["current_password", "password", "password_confirm"]


class LoginForm(forms.Form):
    email = _email()
    password = _password("Password", "current-password")


class EmailForm(forms.Form):
    email = _email()


class CodeForm(forms.Form):
    email = _email(autofocus=False)  # usually filled in already: the code is what is typed
    code = forms.CharField(
        label="6-digit code",
        max_length=6,
        min_length=6,
        widget=forms.TextInput(
            attrs={
                "inputmode": "numeric",
                "autocomplete": "one-time-code",
                "pattern": "[0-9]*",
                "autofocus": "autofocus",
            }
        ),
    )


class NameForm(forms.Form):
    name = forms.CharField(label="Your name", max_length=150, widget=forms.TextInput(attrs={"autocomplete": "name"}))
