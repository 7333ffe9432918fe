"""The bottom layer: data contracts every other layer may import (and that import nothing
of gnnrl). `GraphSnapshot` is the one shape in which every source (Kiali, Prometheus, the
Kubernetes API, the simulator) hands a traffic graph to the rest of the product.
"""
