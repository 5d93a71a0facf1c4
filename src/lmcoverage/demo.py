"""What ``lmcoverage demo`` / ``make demo`` runs: the main job at its smallest convincing size.

The demo is the ``demo`` preset of Figure 1 (see ``lmcoverage.experiments.figure1.PRESETS``
and the README ("Presets and how they were sized") for how it was sized and how long it takes).
"""

DEMO_EXPERIMENT = "figure1"
DEMO_PRESET = "demo"
