"""The file verl imports through `custom_reward_function.path` (the only hook verl 0.6.1 runs in its trainer process
before it looks up `reward_model.reward_manager`): importing it registers our `style_mix` reward manager, installs
the file-logger fix and seals each checkpoint verl saves with its files' sha256.

verl hands the named function (`custom_reward_function.name=rule_score`) to the manager as its per-sample
`compute_score`. `style_mix` uses it only for validation rows, which carry a ground truth (grlo.train.verl.data):
it is verl's own rule scorer. Training rows (`style: model`, no ground truth) are scored from the reward model's
scores; a call for one of them means the run is not using `style_mix`, and the function stops it instead of training
on a zero reward.
"""

from verl.utils.reward_score import default_compute_score

from grlo.train.verl import file_logger, reward_manager, seal  # noqa: F401  (reward_manager registers "style_mix")

file_logger.install()  # verl's `file` logger: tensor metrics and per-line flush (grlo.train.verl.file_logger)
seal.install()  # every checkpoint verl saves gets its files' sha256 (grlo.train.verl.seal), checked before a resume


def rule_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    if ground_truth is None or not str(ground_truth).strip():
        raise RuntimeError("verl asked for a rule score of a row without ground truth (a `style: model` training "
                           "row): GRLO needs reward_model.reward_manager=style_mix and reward_model.enable=True")
    return default_compute_score(data_source, solution_str, ground_truth, extra_info)
