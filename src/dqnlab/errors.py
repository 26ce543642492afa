"""The one exception type for mistakes a user can fix.

Library code raises `DqnlabError` with a single sentence that names the bad
value and what is allowed; the CLI prints it on one line and exits with code 2.
Anything else that escapes is a bug in dqnlab and keeps its traceback.
"""

from __future__ import annotations


class DqnlabError(Exception):
    """A user-facing error: bad configuration, bad path, unsupported environment."""
