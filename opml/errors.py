"""The one exception type for mistakes a user can make and correct."""


class OpmlError(Exception):
    """A request opml rejects, with a message that names the value and the fix.

    Pages show the message with ``st.error``, the CLI prints it on one line
    to stderr, and the HTTP servers map it to a 4xx status.
    """

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class NotFoundError(OpmlError):
    """A named object (dataset, version, ...) that does not exist."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=404)
