"""What ``lmcoverage demo`` / ``make demo`` runs: the main job at its smallest convincing size.

The demo is the ``demo`` preset of Figure 2 (see ``lmcoverage.experiments.figure2.PRESETS``
and docs/figures.md for how it was sized and how long it takes).
"""

DEMO_EXPERIMENT = "figure2"
DEMO_PRESET = "demo"
