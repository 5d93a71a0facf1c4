"""Models: GPT-2-style transformers, Hugging Face causal-LM loading, autoregressive linear models."""
