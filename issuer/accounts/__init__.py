"""Clerk accounts: who may sign in, with which role, the sign-in throttle and the
server-side sessions.

The package's public face: views live in ``views.py`` and are registered by the app."""

from issuer.accounts.models import (
    CLERK,
    ROLES,
    SUPERVISOR,
    SignInCounter,
    User,
    UserSession,
)
from issuer.accounts.passwords import (
    DEFAULTS,
    MAX_LENGTH,
    MIN_LENGTH,
    Busy,
    check,
    make_hasher,
)
from issuer.accounts.service import (
    USERNAME,
    AccountError,
    SignInFailed,
    Throttled,
    ThrottlePolicy,
    authenticate,
    create_user,
    failures,
    get_user,
    list_users,
    normalize_username,
    reset_password,
    set_active,
)

__all__ = [
    "CLERK",
    "DEFAULTS",
    "MAX_LENGTH",
    "MIN_LENGTH",
    "ROLES",
    "SUPERVISOR",
    "USERNAME",
    "AccountError",
    "Busy",
    "SignInCounter",
    "SignInFailed",
    "ThrottlePolicy",
    "Throttled",
    "User",
    "UserSession",
    "authenticate",
    "check",
    "create_user",
    "failures",
    "get_user",
    "list_users",
    "make_hasher",
    "normalize_username",
    "reset_password",
    "set_active",
]
