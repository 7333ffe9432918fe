"""MLflow tracking and the model registry around the GNNRL policy.

* `gnnrl.registry.tracking` -- tracking URI (default ``sqlite:///mlflow.db``), reachability
  probe, run logging;
* `gnnrl.registry.pyfunc_model` -- the policy as a pyfunc model (``gnnrl-scaler``);
* `gnnrl.registry.gate` -- the promotion gate (a pure function of evaluation numbers);
* `gnnrl.registry.promote` -- register, gate, move ``challenger``/``champion``; list/show.
"""
