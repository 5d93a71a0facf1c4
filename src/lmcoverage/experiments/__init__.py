"""Runnable experiments: each module has ``PRESETS`` and ``run(config, out_dir, ctx)``.

See :mod:`lmcoverage.experiments.registry` for the list and the protocol.
"""
