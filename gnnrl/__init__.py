"""GNNRL: a graph-neural-network reinforcement-learning autoscaler for microservices.

The package holds the logic; `gnnrl.pipeline.components` and `gnnrl.pipeline.dag` only wire it
together.
"""

__version__ = "0.1.0"

#: Version of the observation layout (feature order, units, shapes). A model records the
#: version it was trained with; the scaler refuses a model whose version differs.
OBSERVATION_SCHEMA_VERSION = 1
