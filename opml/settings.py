"""Settings read from the environment when a workspace is opened."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from opml.errors import OpmlError

DEFAULT_HOME = ".opml"
DEFAULT_MAX_DATASET_MB = 500.0
DEFAULT_DOWNLOAD_TIMEOUT_S = 300.0
DEFAULT_MAX_NODES = 1


@dataclass(frozen=True)
class Settings:
    home: Path
    """The workspace folder: ``OPML_HOME``, default ``./.opml``."""
    max_dataset_bytes: int
    """Largest source file a dataset version may have: ``OPML_MAX_DATASET_MB`` in megabytes of 10^6 bytes (default 500)."""
    download_timeout_s: float
    """Limit on a whole URL download: ``OPML_DOWNLOAD_TIMEOUT_S`` (default 300)."""
    max_nodes: int = DEFAULT_MAX_NODES
    """Runs the local compute executes at once: ``OPML_MAX_NODES`` (default 1)."""

    @classmethod
    def from_environment(cls, home: str | Path | None = None) -> Settings:
        home_path = Path(home if home is not None else os.environ.get("OPML_HOME", DEFAULT_HOME))
        max_dataset_mb = _positive_number("OPML_MAX_DATASET_MB", DEFAULT_MAX_DATASET_MB)
        return cls(
            home=home_path.expanduser().resolve(),
            max_dataset_bytes=int(max_dataset_mb * 1_000_000),
            download_timeout_s=_positive_number("OPML_DOWNLOAD_TIMEOUT_S", DEFAULT_DOWNLOAD_TIMEOUT_S),
            max_nodes=int(_positive_number("OPML_MAX_NODES", DEFAULT_MAX_NODES)),
        )


def _positive_number(variable: str, default: float) -> float:
    text = os.environ.get(variable)
    if text is None or text.strip() == "":
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise OpmlError(f"Invalid {variable}={text!r}: set a number greater than 0, or unset it for {default:g}.")
    return value
