"""Best-of-N ground truth: verifiers, sampled verdicts, unbiased pass@k and the predictiveness
report that asks whether coverage (or KL, or cross-entropy) predicted it."""
