"""Errors a user can cause: reported as one line by the command-line tools."""


class UserError(Exception):
    """A problem with the user's input or options, shown as one clear line (no traceback)."""
