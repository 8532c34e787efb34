"""User-facing errors: one clear line on stderr and exit status 2, never a traceback.

Raise `UserError` anywhere a user can fix the problem (bad input, missing file, bad config).
Click prints `Error: <message>` and exits with `exit_code`.
"""

from __future__ import annotations

import click


class UserError(click.ClickException):
    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # keep it on one line
