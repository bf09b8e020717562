"""A resumed verl 0.6.1 run trains on the batches an uninterrupted one does: the data loader verl builds from the
config our command composes to (verl's own `create_rl_sampler` and `StatefulDataLoader`, as `RayPPOTrainer` makes
them), checkpointed inside the second epoch as verl saves it (`data.pt` = the loader's state_dict) and restored in a
fresh loader driven by verl's restarted epoch loop, yields the rest of the uninterrupted order."""

from pathlib import Path

import pytest

from grlo.train.verl.compat import ensure_transformers_aliases

ensure_transformers_aliases()

from torchdata.stateful_dataloader import StatefulDataLoader  # noqa: E402
from verl.trainer.main_ppo import create_rl_sampler  # noqa: E402

from grlo.train.verl import overrides as O  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
N, BATCH, EPOCHS = 10, 3, 3  # 3 batches per epoch (the last partial one dropped, as verl does)


@pytest.fixture(scope="module")
def data_config():
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    import verl
    from grlo import config as C

    g = C.load([str(ROOT / "config" / "config.yaml")])["grlo"]
    paths = O.Paths("t.parquet", "v.parquet", "m", "rm", "ck", "log")
    ovr = O.build_overrides(g, "b", paths, {"train_batch_size": 512, "actor_mini": 128, "critic_mini": 128}, 7)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(Path(verl.__file__).parent / "trainer" / "config"), version_base=None):
        return compose("ppo_trainer", overrides=[o.arg() for o in ovr]).data


def loader(data_config):
    """verl 0.6.1's RayPPOTrainer._create_dataloader for the training set."""
    dataset = list(range(N))
    return StatefulDataLoader(dataset=dataset, batch_size=BATCH, num_workers=data_config["dataloader_num_workers"],
                              drop_last=True, collate_fn=lambda b: list(b),
                              sampler=create_rl_sampler(data_config, dataset))


def verl_fit(dl, epochs: int, stop_after: int | None = None) -> list[list[int]]:
    """The batches verl's fit loop draws (`for epoch in range(total_epochs): for batch in dataloader`)."""
    out = []
    for _ in range(epochs):
        for batch in dl:
            out.append(batch)
            if stop_after is not None and len(out) == stop_after:
                return out
    return out


@pytest.mark.parametrize("kill_after", [2, 3, 4, 5])
def test_resumed_data_order_is_the_uninterrupted_one(data_config, kill_after):
    uninterrupted = verl_fit(loader(data_config), EPOCHS)
    assert len(uninterrupted) == EPOCHS * (N // BATCH)
    assert uninterrupted[:3] != uninterrupted[3:6]  # shuffled per epoch
    first = loader(data_config)
    done = verl_fit(first, EPOCHS, stop_after=kill_after)
    state = first.state_dict()  # what verl writes to global_step_<k>/data.pt
    resumed = loader(data_config)
    resumed.load_state_dict(state)
    rest = verl_fit(resumed, EPOCHS)[: len(uninterrupted) - kill_after]  # verl stops at total_training_steps
    assert done + rest == uninterrupted


def test_same_seed_same_order_other_seed_other_order(data_config):
    from omegaconf import OmegaConf

    a = verl_fit(loader(data_config), 2)
    assert a == verl_fit(loader(data_config), 2)
    other = OmegaConf.merge(data_config, {"seed": 8})
    assert verl_fit(loader(other), 2) != a


def test_without_data_seed_verl_shuffles_at_torchs_default_seed_as_both_deviations_say(data_config):
    """The `data.seed` deviation of both verl stages says what verl 0.6.1's own sampler does without the key: a fresh
    torch.Generator, never seeded, so torch's fixed default seed (67280421310721), and no fallback to 1."""
    import torch
    from omegaconf import OmegaConf

    from grlo.train.verl import rlvr_overrides as R

    default = torch.Generator().initial_seed()
    plain = OmegaConf.merge(data_config, {"sampler": None, "seed": None, "shuffle": True})
    big = list(range(200))
    order = list(create_rl_sampler(plain, big))
    assert order == list(create_rl_sampler(plain, big))  # reproducible without a seed
    assert order == list(create_rl_sampler(OmegaConf.merge(plain, {"seed": default}), big))
    assert order != list(create_rl_sampler(OmegaConf.merge(plain, {"seed": 1}), big))
    for text in (O.DEVIATION_REASONS["data.seed"], R.DEVIATION_REASONS["data.seed"]):
        assert str(default) in text and "no fallback to 1" in text and "unseeded" not in text, text
