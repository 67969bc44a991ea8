"""glore: Graph-based Global Reasoning Networks (Chen et al., CVPR 2019)."""

__version__ = "0.1.0"
