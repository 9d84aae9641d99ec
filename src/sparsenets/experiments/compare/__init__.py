"""The cross-method comparison: every compression adapter on the same models, data and FLOPs budgets."""
