"""Sign in: with sign-in configured, the only page a visitor sees until they have signed in."""

from core.ui.user import sign_in_form

sign_in_form()
