"""Ending an account's other sign-ins when its password changes, wherever it is changed.

Django calls `password_changed(password, user)` on every configured password validator after a
`set_password()` is saved: the admin's password forms, `manage.py changepassword`, a reset. Hooking there
covers all of them in one place, without a signal on every User save.
"""

from typing import Any

from accounts.models import User


class SignOutEverywhereOnPasswordChange:
    """Not a rule for passwords: the hook that revokes every refresh token and portal session of the account."""

    def validate(self, password: str, user: Any = None) -> None:
        return None

    def get_help_text(self) -> str:
        return "Changing your password signs you out everywhere else."

    def password_changed(self, password: str, user: Any = None) -> None:
        from accounts.services import account_sign_out_everywhere

        # A new account has nothing to end (and a password set at creation costs nothing here).
        if isinstance(user, User) and user.pk is not None and user.last_login is not None:
            account_sign_out_everywhere(user_id=user.pk)
