"""Reproductions of published results about rectifiers (`leakyjax study`).

Needs `pip install "leakyjax[train]"`. Each study writes a JSON file with every
number and PNG figures into `out` and resumes where it stopped; the claims,
published statements, our numbers and verdicts are in `docs/STUDY.md`.

Example:
    >>> import leakyjax.study
    >>> list(leakyjax.study.STUDIES)
    ['born-dead', 'init-depth', 'slope-sweep', 'prelu-profile', 'dead-vs-lr', 'rai', 'redo', 'plasticity']
"""

from leakyjax._src.study.studies import STUDIES as STUDIES
from leakyjax._src.study.studies import StudyResult as StudyResult
from leakyjax._src.study.studies import run_study as run_study

__all__ = ["STUDIES", "StudyResult", "run_study"]
