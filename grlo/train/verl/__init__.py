"""GRLO on verl 0.6.1 (paper mode's training engine): the `main_ppo` command built from the `grlo:` config
(overrides), the data in verl's schema (data), the `style_mix` reward manager (reward_manager, plugin), verl's metrics
in our metrics.jsonl schema (metrics), the merged Hugging Face model at final/ (finalize) and the Ray launch (launch).
Only reward_manager and plugin import verl; everything else runs without it (dry runs, the workflow)."""
