"""GNNRL: a graph-neural-network reinforcement-learning autoscaler for microservices.

The package holds the logic; `components/` and `pipelines/` only wire it together.
"""

__version__ = "0.1.0"

from gnnrl.contracts.observation import OBSERVATION_SCHEMA_VERSION

__all__ = ["OBSERVATION_SCHEMA_VERSION", "__version__"]
