"""lmcoverage."""
