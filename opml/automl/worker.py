"""The training worker of one AutoML run: ``python -m opml.automl.worker HOME RUN_ID``.

It trains, records each child run as it completes and saves the kept
models. Its supervisor records how it ended when it dies without doing so.
"""

from __future__ import annotations

import logging
import sys
import traceback
import warnings

import joblib

import opml
from opml.automl.engine import Candidate, train
from opml.automl.settings import AutoMLSettings

log = logging.getLogger("opml.worker")


def execute(home: str, run_id: str) -> int:
    workspace = opml.connect(home)
    runs = workspace.runs.repository
    run = runs.get(run_id)
    log.info("Run %s: training on %s with %s", run_id, run.dataset_ref, run.settings)

    def record_child(candidate: Candidate) -> None:
        runs.add_child(
            run_id,
            {
                "iteration": candidate.iteration,
                "algorithm": candidate.algorithm,
                "hyperparameters": candidate.hyperparameters,
                "duration_s": candidate.duration_s,
                "metrics": candidate.metrics,
                "charts": candidate.charts,
            },
        )

    try:
        settings = AutoMLSettings.from_dict(run.settings)
        frame = workspace.datasets.load(run.dataset_name, run.dataset_version)
        result = train(frame, settings, record_child)

        model_folder = runs.run_folder(run_id) / "models"
        model_folder.mkdir(parents=True, exist_ok=True)
        for iteration, model in result.models.items():
            path = model_folder / f"child-{iteration}.joblib"
            joblib.dump(model, path)
            relative = path.relative_to(runs.folder.parent).as_posix()
            runs.set_child_model(run_id, iteration, relative, result.feature_importance[iteration])

        runs.finish(
            run_id,
            "Completed",
            best_iteration=result.best.iteration,
            result={"label_counts": result.label_counts, "best_algorithm": result.best.algorithm},
        )
        log.info("Run %s completed: best child run %d (%s)", run_id, result.best.iteration, result.best.algorithm)
        return 0
    except Exception as error:  # the process boundary: every failure is recorded on the run
        log.error("Run %s failed: %s\n%s", run_id, error, traceback.format_exc())
        runs.finish(run_id, "Failed", error=str(error))
        return 1


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    sys.exit(execute(sys.argv[1], sys.argv[2]))
