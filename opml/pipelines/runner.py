"""The runner of one pipeline run: ``python -m opml.pipelines.runner HOME RUN_ID``.

It executes the steps in order, each with its own log file, and records
every step's status and outputs. A failed step fails the run with its
reason, and the steps after it are Skipped. A cancel request takes effect
between steps, while the AutoML step waits for its run, and in the deploy
step until it starts to change the deployment. A later request cannot undo
the deployment, so the run completes and its log records the late request.
"""

from __future__ import annotations

import logging
import sys
import traceback
import warnings
from contextlib import contextmanager

import opml
from opml.pipelines.definition import PipelineDefinition
from opml.pipelines.service import fingerprint
from opml.pipelines.steps import STEPS, StepCanceled, StepContext, StepSkipped

log = logging.getLogger("opml.pipeline")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def step_log(path):
    """Copy every log record to the step's own file while the step runs."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


def execute(home: str, run_id: str) -> int:
    workspace = opml.connect(home)
    repository = workspace.pipelines.repository
    if not repository.mark_run_started(run_id):
        log.info("Pipeline run %s is no longer queued; nothing to do", run_id)
        return 0
    run = repository.get_run(run_id)
    definition = PipelineDefinition.from_dict(run.definition)
    context = StepContext(workspace=workspace, run_id=run_id, definition=definition)
    log.info("Pipeline run %s of %s started (%s)", run_id, run.pipeline_ref, run.trigger)

    for position, step in enumerate(STEPS):
        if context.canceled:
            log.info("Pipeline run %s canceled by request before step %s", run_id, step.name)
            repository.finish_run(run_id, "Canceled", "Canceled by request")
            return 0
        with step_log(repository.log_path(run_id, step.name)):
            try:
                key = fingerprint(*step.fingerprint(context)) if definition.allow_reuse and step.fingerprint else None
                repository.start_step(run_id, position, key)
                earlier = repository.reusable_step(step.name, key) if key else None
                if earlier is not None and step.reusable(context, earlier[1]):
                    source, outputs = earlier
                    log.info("Step %s reuses the output of pipeline run %s", step.name, source)
                    repository.finish_step(run_id, position, "Reused", outputs=outputs, reused_from=source)
                else:
                    log.info("Step %s started", step.name)
                    outputs = step.execute(context)
                    repository.finish_step(run_id, position, "Completed", outputs=outputs)
                    log.info("Step %s completed", step.name)
            except StepSkipped as skipped:
                log.info("Step %s skipped: %s", step.name, skipped)
                repository.finish_step(run_id, position, "Skipped", outputs={"reason": str(skipped)})
                outputs = {}
            except StepCanceled:
                log.info("Pipeline run %s canceled by request during step %s", run_id, step.name)
                repository.finish_step(run_id, position, "Canceled", error="Canceled by request")
                repository.finish_run(run_id, "Canceled", "Canceled by request")
                return 0
            except Exception as error:  # the process boundary: every failure is recorded on the run
                message = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
                log.error("Step %s failed: %s\n%s", step.name, message, traceback.format_exc())
                repository.finish_step(run_id, position, "Failed", error=message)
                repository.finish_run(run_id, "Failed", f"Step {step.name} failed: {message}")
                return 1
        context.outputs[step.name] = outputs

    if context.canceled:
        log.warning(
            "Pipeline run %s completed: the cancel request came after the deploy step had started to change the deployment",
            run_id,
        )
    repository.finish_run(run_id, "Completed")
    log.info("Pipeline run %s completed", run_id)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stdout)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    sys.exit(execute(sys.argv[1], sys.argv[2]))
