"""The file verl imports through `custom_reward_function.path` (the only hook verl 0.6.1 runs in its trainer
process before it looks up `reward_model.reward_manager`): importing it registers our `style_mix` reward manager.

verl also hands the named function (`custom_reward_function.name=style_mix_guard`) to the manager as its per-sample
`compute_score`. `style_mix` scores whole batches from the reward model's scores and never calls it; if verl ever does,
the run was configured with another reward manager, and the guard stops it instead of training on a wrong reward.
"""

from grlo.train.verl import reward_manager  # noqa: F401  (registers "style_mix")


def style_mix_guard(data_source=None, solution_str=None, ground_truth=None, extra_info=None, **kwargs):
    raise RuntimeError("verl called a per-sample compute_score: GRLO needs reward_model.reward_manager=style_mix "
                       "and reward_model.enable=True (grlo train-grlo builds both)")
