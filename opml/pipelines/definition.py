"""Pipeline definitions: the five steps and their parameters, as a record and as YAML.

The YAML form groups the parameters by step::

    experiment: bankmarketing-pipeline
    allow_reuse: true
    steps:
      dataset: {name: bankmarketing, version: latest, test_fraction: 0.2}
      automl: {label_column_name: y, primary_metric: AUC_weighted, experiment_timeout_seconds: 60}
      evaluate: {dataset: null}
      register: {model_name: bankmarketing-model}
      deploy: {deployment: bankmarketing-service, condition: better, threshold: null}

A run can override the flat parameters of ``PARAMETERS``, as Azure's
``ParameterAssignments`` do.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass

import yaml

from opml.automl.settings import AutoMLSettings
from opml.datasets import parse_dataset_ref, validate_dataset_name
from opml.deployments import validate_deployment_name
from opml.errors import OpmlError
from opml.models import validate_model_name

MAX_NUMBER = 1e15
"""Bound of numeric parameters: larger values are mistakes, and SQLite stores integers in 64 bits."""
STEP_NAMES = ("dataset", "automl", "evaluate", "register", "deploy")
DEPLOY_CONDITIONS = ("always", "threshold", "better")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")
EXPERIMENT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

# Flat parameter name -> (step, key, type). ``float`` also accepts whole numbers.
PARAMETERS: dict[str, tuple[str, str, type]] = {
    "dataset_name": ("dataset", "name", str),
    "dataset_version": ("dataset", "version", int),
    "test_fraction": ("dataset", "test_fraction", float),
    "label_column_name": ("automl", "label_column_name", str),
    "primary_metric": ("automl", "primary_metric", str),
    "experiment_timeout_seconds": ("automl", "experiment_timeout_seconds", float),
    "iterations": ("automl", "iterations", int),
    "n_cross_validations": ("automl", "n_cross_validations", int),
    "evaluate_dataset": ("evaluate", "dataset", str),
    "model_name": ("register", "model_name", str),
    "deployment_name": ("deploy", "deployment", str),
    "deploy_condition": ("deploy", "condition", str),
    "deploy_threshold": ("deploy", "threshold", float),
}


def validate_pipeline_name(name: str) -> str:
    if not NAME_PATTERN.match(name or ""):
        raise OpmlError(
            f"Invalid pipeline name {name!r}: use 1 to 100 letters, digits, spaces, '.', '_' or '-', "
            "starting with a letter or digit, as in Bankmarketing Train."
        )
    return name


def validate_experiment_name(name: str) -> str:
    if not EXPERIMENT_PATTERN.match(name or ""):
        raise OpmlError(
            f"Invalid experiment name {name!r}: use 1 to 100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, as in bankmarketing-pipeline."
        )
    return name


@dataclass(frozen=True)
class PipelineDefinition:
    """The parameters of each step; ``to_dict`` gives the YAML form."""

    dataset_name: str
    automl: AutoMLSettings
    model_name: str
    dataset_version: int | None = None
    """None for the latest version when the run starts."""
    test_fraction: float = 0.0
    """Rows held out for the evaluate step; 0 evaluates on ``evaluate_dataset`` or the AutoML validation."""
    evaluate_dataset: str | None = None
    """``name`` or ``name:version`` of labelled data to evaluate on, instead of a test split."""
    deployment_name: str | None = None
    """None to end after registering."""
    deploy_condition: str = "better"
    deploy_threshold: float | None = None
    experiment: str = "pipeline"
    allow_reuse: bool = True

    def validate(self) -> PipelineDefinition:
        """Check each step's parameters; raise OpmlError naming the first wrong one."""
        validate_dataset_name(self.dataset_name)
        if self.dataset_version is not None and self.dataset_version < 1:
            raise OpmlError(f"Invalid dataset version {self.dataset_version}: give 1 or more, or latest.")
        if not 0.0 <= self.test_fraction <= 0.5:
            raise OpmlError(f"Invalid test_fraction {self.test_fraction:g}: give a fraction from 0 to 0.5 (0 for no split).")
        if self.test_fraction and self.evaluate_dataset:
            raise OpmlError(
                f"Give either test_fraction or an evaluate dataset, not both: set test_fraction to 0 "
                f"(--test-fraction 0) to evaluate on {self.evaluate_dataset}."
            )
        if self.evaluate_dataset:
            parse_dataset_ref(self.evaluate_dataset)

        try:
            self.automl.validate()
        except TypeError as error:
            raise OpmlError(f"Invalid automl settings: a value has the wrong type ({error}).") from error
        validate_model_name(self.model_name)

        if self.deployment_name is not None:
            validate_deployment_name(self.deployment_name)
        if self.deploy_condition not in DEPLOY_CONDITIONS:
            raise OpmlError(
                f"Invalid deploy condition {self.deploy_condition!r}: use {', '.join(DEPLOY_CONDITIONS)}."
            )
        if self.deploy_condition == "threshold" and self.deploy_threshold is None:
            raise OpmlError("The deploy condition 'threshold' needs deploy_threshold (--threshold), such as 0.9.")
        if self.deploy_threshold is not None and not 0.0 <= self.deploy_threshold <= 1.0:
            raise OpmlError(
                f"Invalid deploy_threshold {self.deploy_threshold:g}: give a value of the primary metric, from 0 to 1."
            )
        if self.deploy_condition != "threshold" and self.deploy_threshold is not None:
            raise OpmlError(
                f"deploy_threshold {self.deploy_threshold:g} applies only with the deploy condition 'threshold' "
                f"(--deploy-when threshold); the condition is {self.deploy_condition!r}."
            )

        validate_experiment_name(self.experiment)
        return self

    @property
    def dataset_label(self) -> str:
        return f"{self.dataset_name}:{self.dataset_version or 'latest'}"

    def to_dict(self) -> dict:
        return {
            "experiment": self.experiment,
            "allow_reuse": self.allow_reuse,
            "steps": {
                "dataset": {
                    "name": self.dataset_name,
                    "version": self.dataset_version or "latest",
                    "test_fraction": self.test_fraction,
                },
                "automl": self.automl.to_dict(),
                "evaluate": {"dataset": self.evaluate_dataset},
                "register": {"model_name": self.model_name},
                "deploy": {
                    "deployment": self.deployment_name,
                    "condition": self.deploy_condition,
                    "threshold": self.deploy_threshold,
                },
            },
        }

    @classmethod
    def from_dict(cls, data: dict) -> PipelineDefinition:
        """Read the YAML form, naming any missing or unknown key."""
        if not isinstance(data, dict) or not isinstance(data.get("steps"), dict):
            raise OpmlError("A pipeline definition needs a 'steps' mapping with dataset, automl and register.")
        unknown = sorted(set(data) - {"description", "experiment", "allow_reuse", "steps"})
        if unknown:
            raise OpmlError(
                f"Unknown pipeline keys {', '.join(unknown)}: use description, experiment, allow_reuse and steps."
            )
        steps = data["steps"]
        unknown = sorted(set(steps) - set(STEP_NAMES))
        if unknown:
            raise OpmlError(f"Unknown steps {', '.join(unknown)}: the steps are {', '.join(STEP_NAMES)}.")
        for required in ("dataset", "automl", "register"):
            if not isinstance(steps.get(required), dict):
                raise OpmlError(f"The pipeline definition has no {required!r} step; add steps.{required}.")

        dataset = _known_keys(steps["dataset"], "dataset", ("name", "version", "test_fraction"))
        evaluate = _known_keys(steps.get("evaluate") or {}, "evaluate", ("dataset",))
        register = _known_keys(steps["register"], "register", ("model_name",))
        deploy = _known_keys(steps.get("deploy") or {}, "deploy", ("deployment", "condition", "threshold"))
        automl_fields = set(AutoMLSettings.__dataclass_fields__)
        automl = _known_keys(steps["automl"], "automl", tuple(sorted(automl_fields)))
        if "label_column_name" not in automl:
            raise OpmlError("The automl step needs label_column_name, such as y.")
        settings = AutoMLSettings.from_dict(
            {key: _automl_value(key, value) for key, value in automl.items()}
        )

        version = dataset.get("version", "latest")
        definition = cls(
            dataset_name=_typed(dataset.get("name"), str, "dataset.name"),
            dataset_version=None if version in (None, "latest") else _typed(version, int, "dataset.version"),
            test_fraction=_typed(dataset.get("test_fraction", 0.0), float, "dataset.test_fraction"),
            automl=settings,
            evaluate_dataset=_optional(evaluate.get("dataset"), str, "evaluate.dataset"),
            model_name=_typed(register.get("model_name"), str, "register.model_name"),
            deployment_name=_optional(deploy.get("deployment"), str, "deploy.deployment"),
            deploy_condition=_typed(deploy.get("condition", "better"), str, "deploy.condition"),
            deploy_threshold=_optional(deploy.get("threshold"), float, "deploy.threshold"),
            experiment=_typed(data.get("experiment", "pipeline"), str, "experiment"),
            allow_reuse=_typed(data.get("allow_reuse", True), bool, "allow_reuse"),
        )
        return definition.validate()

    def to_yaml(self, description: str = "") -> str:
        data = self.to_dict()
        if description:
            data = {"description": description, **data}
        return yaml.safe_dump(data, sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str, source: str = "the YAML text") -> PipelineDefinition:
        return cls.from_yaml_with_description(text, source)[0]

    @classmethod
    def from_yaml_with_description(cls, text: str, source: str = "the YAML text") -> tuple[PipelineDefinition, str]:
        """Read the YAML form and its optional top-level ``description``."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise OpmlError(_yaml_error(error, source)) from error
        description = data.get("description") if isinstance(data, dict) else None
        if description is not None and not isinstance(description, str):
            raise OpmlError(f"Invalid description {description!r} in {source}: give a string.")
        return cls.from_dict(data), description or ""

    def with_parameters(self, assignments: dict) -> PipelineDefinition:
        """Return a copy with the flat ``PARAMETERS`` in ``assignments`` replaced, validated."""
        if not isinstance(assignments, dict):
            raise OpmlError("ParameterAssignments must be a JSON object of parameter names and values.")
        unknown = sorted(set(assignments) - set(PARAMETERS))
        if unknown:
            raise OpmlError(
                f"Unknown pipeline parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
                f"the parameters are {', '.join(PARAMETERS)}."
            )
        data = copy.deepcopy(self.to_dict())
        for name, value in assignments.items():
            step, key, kind = PARAMETERS[name]
            nullable = name in ("dataset_version", "iterations", "evaluate_dataset", "deployment_name", "deploy_threshold")
            if name == "dataset_version" and value == "latest":
                value = None
            data["steps"][step][key] = _optional(value, kind, name) if nullable else _typed(value, kind, name)
        return PipelineDefinition.from_dict(data)

    def parameters(self) -> dict:
        """Return the current value of every flat parameter."""
        data = self.to_dict()["steps"]
        return {name: data[step][key] for name, (step, key, _) in PARAMETERS.items()}


# The type each AutoML setting has in YAML, and whether it may be null.
AUTOML_TYPES: dict[str, tuple[type, bool]] = {
    "label_column_name": (str, False),
    "primary_metric": (str, False),
    "task": (str, False),
    "experiment_timeout_seconds": (float, False),
    "iterations": (int, True),
    "n_cross_validations": (int, True),
    "validation_size": (float, True),
    "enable_early_stopping": (bool, False),
    "blocked_models": (list, False),
    "enable_voting_ensemble": (bool, False),
    "random_seed": (int, False),
    "max_ensemble_iterations": (int, False),
}


def _automl_value(key: str, value):
    kind, nullable = AUTOML_TYPES[key]
    name = f"automl.{key}"
    if kind is list:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise OpmlError(f"Invalid value {value!r} for {name}: give a list of model names, such as [RandomForest].")
        return value
    return _optional(value, kind, name) if nullable else _typed(value, kind, name)


def _yaml_error(error: yaml.YAMLError, source: str) -> str:
    """Describe a YAML syntax error by file, line and column."""
    if isinstance(error, yaml.reader.ReaderError):
        return f"{source} is not a YAML text file: {error.reason} at character {error.position}."
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    if mark is None:
        return f"{source} is not valid YAML: {problem}."
    return f"{source} is not valid YAML: line {mark.line + 1}, column {mark.column + 1}: {problem}."


def _known_keys(section, step: str, allowed: tuple[str, ...]) -> dict:
    if not isinstance(section, dict):
        raise OpmlError(f"steps.{step} must be a mapping of its parameters.")
    unknown = sorted(set(section) - set(allowed))
    if unknown:
        raise OpmlError(f"Unknown keys in steps.{step}: {', '.join(unknown)}; use {', '.join(allowed)}.")
    return section


def _typed(value, kind: type, name: str):
    """Return ``value`` as ``kind``, or raise an error naming the parameter and the expected type."""
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or abs(value) > MAX_NUMBER:
            raise OpmlError(f"Invalid value {value!r} for {name}: give a finite number.")
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > MAX_NUMBER:
            raise OpmlError(f"Invalid value {value!r} for {name}: give a whole number below {MAX_NUMBER:.0e}.")
        return value
    if kind in (str, bool) and isinstance(value, kind):
        return value
    expected = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}[kind]
    raise OpmlError(f"Invalid value {value!r} for {name}: give {expected}.")


def _optional(value, kind: type, name: str):
    return None if value is None else _typed(value, kind, name)
