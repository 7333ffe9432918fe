"""GNNRL: a graph-neural-network reinforcement-learning autoscaler for microservices.

The package holds the logic; `gnnrl.pipeline.components` and `gnnrl.pipeline.dag` only wire it
together.
"""

__version__ = "0.1.0"

from gnnrl.contracts.observation import OBSERVATION_SCHEMA_VERSION

__all__ = ["OBSERVATION_SCHEMA_VERSION", "__version__"]
