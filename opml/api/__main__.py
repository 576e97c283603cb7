"""Run the API server: ``python -m opml.api HOME HOST PORT INSTANCE_ID``."""

import logging
import os
import sys

import uvicorn

from opml.api.app import LOG_FORMAT

if __name__ == "__main__":
    home, host, port, instance_id = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    os.environ["OPML_HOME"] = home
    os.environ["OPML_API_INSTANCE"] = instance_id
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    uvicorn.run(
        "opml.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=1,
        access_log=True,
        log_level="info",
        log_config=None,
    )
