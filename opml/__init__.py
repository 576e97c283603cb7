"""opml: from a raw dataset to a monitored, authenticated scoring endpoint."""

from opml.errors import NotFoundError, OpmlError
from opml.workspace import Workspace, connect

__version__ = "0.1.0"

__all__ = ["NotFoundError", "OpmlError", "Workspace", "connect", "__version__"]
