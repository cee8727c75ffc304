"""Graded early-warning alert pipeline: the domain core.

Nothing in this package imports Airflow; the DAGs in ``dags/`` and the
plugin in ``plugins/`` are thin wiring around it.
"""

__version__ = "0.1.0"
