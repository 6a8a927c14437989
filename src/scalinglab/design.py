"""Experiment design, the public face: ``scalinglab.design.suggest`` picks the next runs that most
narrow the target's interval per unit cost (``target_interval``: that interval now);
``scalinglab.design.score`` simulates a ladder before it is run (``compare`` scores two).  The
science lives in ``scalinglab.studies.design*``."""
from scalinglab.studies.design import Suggestion, suggest, target_interval
from scalinglab.studies.design_pool import candidate_pool
from scalinglab.studies.design_score import DesignScore, compare, compare_summary, score

__all__ = ["DesignScore", "Suggestion", "candidate_pool", "compare", "compare_summary", "score", "suggest",
           "target_interval"]
