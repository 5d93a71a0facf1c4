"""Models: GPT-2-style transformers, HF causal-LM loading, autoregressive linear models."""
