"""Studies built on the training stack: `compare` and published-result checks.

Needs the `train` extra: `pip install "leakyjax[train]"`.
"""
