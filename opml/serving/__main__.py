"""Run a deployment's server: ``python -m opml.serving FOLDER HOST PORT WORKERS``."""

import logging
import os
import sys

import uvicorn

from opml.serving.app import LOG_FORMAT

if __name__ == "__main__":
    folder, host, port, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    os.environ["OPML_DEPLOYMENT_DIR"] = folder
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    uvicorn.run(
        "opml.serving.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="info",
        log_config=None,
    )
