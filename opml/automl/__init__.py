"""AutoML: the search over candidate models, their metrics and the trained model."""
