"""verl 0.6.1 on CPU: what its real `main_ppo` needs to train on a machine without a GPU (smoke mode, `make test`,
`grlo rehearse`). Never used in paper mode: `overrides()` is added only when no CUDA device is visible
(`needed()`), and nothing here edits verl; it is installed in every Ray worker by Ray's
`runtime_env.worker_process_setup_hook` (`HOOK`), which calls `install()`.

Each item is a verl 0.6.1 behaviour (file in verl's package) and what gets past it on CPU:
  - Ray: the trainer checks the cluster's GPUs (`trainer/ppo/ray_trainer.py` `_check_resource_available`) and, with
    `trainer.device=cpu`, the placement-group bundle asks for a custom resource literally named `cpu`
    (`single_controller/ray/base.py`): `+ray_kwargs.ray_init.num_gpus=1` and `+ray_kwargs.ray_init.resources.cpu=N`.
  - process groups ask for `cpu:gloo,cpu:nccl` or `nccl` (`workers/fsdp_workers.py`, `utils/device.py`): gloo.
  - FSDP1 `sync_module_states=True` (and `device_id`, CPU offload) refuse CPU parameters: off (one rank holds all).
  - `torch.cpu` lacks `get_rng_state`, `set_rng_state`, `manual_seed`, `empty_cache`, `memory_*`, `mem_get_info`
    that verl calls through `get_torch_device()`: the process-wide equivalents / zeros.
  - no `hf` rollout in `_ROLLOUT_REGISTRY` (vllm/sglang only) and `HFRollout` is abstract: our
    `grlo.train.verl.cpu_rollout.HFGenerateRollout` (HF `generate` on the actor's weights, synced each step).
  - gloo rejects an `all_gather` of 0-d tensors (`utils/profiler/performance.py`): gathered as 1-element tensors.
  - the reward-model worker hard-codes `attn_implementation="flash_attention_2"`: sdpa on CPU.
  - actor/critic/RM: `use_remove_padding=False` (flash-attn varlen kernels) and `attn_implementation=sdpa`.
  - Ray sets OMP_NUM_THREADS=1 in its workers: torch threads = the CPUs the process may use (`_threads`).
  - bf16 compute: FSDP casts parameters to bf16 unless `fsdp_config.mixed_precision` says otherwise, and the actor,
    critic, reward model and HF rollout run their forward under `torch.autocast(dtype=bfloat16)`
    (`workers/actor/dp_actor.py`, `workers/critic/dp_critic.py`, `workers/fsdp_workers.py`,
    `workers/rollout/hf_rollout.py`). CPUs without AVX512-BF16/AMX run bf16 matmuls through torch's reference GEMM
    (`cpublas_gemm_impl`, seen in a profile): one SmolLM2-135M PPO step took 527 s (critic update 184 s, actor
    update 290 s) on 2 AMD EPYC cores. Here FSDP keeps fp32 (`mixed_precision.param_dtype=fp32`) and CPU autocast
    is off (`_fp32_on_cpu`): the CPU run computes in fp32. bf16 numerics are a GPU behaviour the rehearsal does not
    cover (docs/grlo_ppo.md).

API (used by grlo.train.train_grlo and grlo.train.rehearse; other verl runs, e.g. RLVR on verl, can use it too):
  needed() -> bool                       no CUDA device visible (then the overrides below are required)
  overrides(n_cpus) -> [(key, value, reason)]   the main_ppo overrides that select all of the above
  install()                              apply the patches in this process (idempotent; the Ray setup hook)
"""

from __future__ import annotations

import os

from grlo.train.verl.compat import ensure_transformers_aliases

HOOK = "grlo.train.verl.cpu.install"
ROLLOUT = "hf"
ROLLOUT_CLASS = "grlo.train.verl.cpu_rollout.HFGenerateRollout"
WHY = "CPU only (grlo.train.verl.cpu): "
FSDP_CONFIGS = ("actor_rollout_ref.actor.fsdp_config", "actor_rollout_ref.ref.fsdp_config", "critic.model.fsdp_config")
_installed = False


def needed() -> bool:
    """True when no CUDA device is visible: verl must then run with `overrides()`."""
    import torch  # heavy: torch

    return not torch.cuda.is_available()


def on_cpu(cfg: dict) -> bool:
    """verl runs on CPU (this module) outside paper mode when no GPU is visible; paper mode never does."""
    return cfg.get("mode") != "paper" and needed()


def overrides(n_cpus: int | None = None) -> list[tuple[str, str, str]]:
    """(key, value, reason) main_ppo overrides for a CPU run; n_cpus: the Ray CPUs (default: this machine's, >= 4)."""
    n = max(int(n_cpus or os.cpu_count() or 1), 4)  # TaskRunner + one colocated worker group, never starved
    return [
        ("trainer.device", "cpu", WHY + "verl's device name (trainer.device=cuda needs a GPU)"),
        ("ray_kwargs.ray_init.num_cpus", str(n), WHY + "Ray CPUs for the TaskRunner and the worker group"),
        ("+ray_kwargs.ray_init.num_gpus", "1", WHY + "passes verl's GPU-count check; no worker asks for it"),
        ("+ray_kwargs.ray_init.resources.cpu", str(n), WHY + "the custom resource `cpu` verl's bundles ask for"),
        ("+ray_kwargs.ray_init.runtime_env.worker_process_setup_hook", HOOK,
         WHY + "gloo, FSDP on CPU, torch.cpu functions, the HF rollout, sdpa reward model in every Ray worker"),
        ("actor_rollout_ref.rollout.name", ROLLOUT, WHY + "HF generate (vLLM needs a GPU)"),
        ("actor_rollout_ref.model.use_remove_padding", "False", WHY + "remove-padding needs flash-attn kernels"),
        ("critic.model.use_remove_padding", "False", WHY + "remove-padding needs flash-attn kernels"),
        ("reward_model.model.use_remove_padding", "False", WHY + "remove-padding needs flash-attn kernels"),
        ("+actor_rollout_ref.model.override_config.attn_implementation", "sdpa", WHY + "no flash-attn on CPU"),
        ("+critic.model.override_config.attn_implementation", "sdpa", WHY + "no flash-attn on CPU"),
        *[(f"+{k}.mixed_precision.param_dtype", "fp32", WHY + "bf16 matmuls are emulated on CPU (many times slower)")
          for k in FSDP_CONFIGS],
    ]


def install() -> None:
    """Patch this process so verl 0.6.1's workers run on CPU (a no-op when a GPU is visible, or the second time)."""
    global _installed
    if not _installed and needed():
        _installed = True
        _torch_cpu_functions()
        _fp32_on_cpu()
        _gloo_process_groups()
        _fsdp_on_cpu()
        _sdpa_reward_model()
        _register_rollout()
        _seed_worker()
        _threads()
    ensure_transformers_aliases()  # last: importing verl above resets what transformers' lazy module holds


def _seed_worker() -> None:
    """Seed torch in each Ray worker before verl builds its models (GRLO_SEED, the run's seed): the critic's value head
    is initialised randomly, and verl 0.6.1 seeds nothing before that, so two same-seed CPU runs would differ."""
    import torch  # heavy: torch

    torch.manual_seed(int(os.environ.get("GRLO_SEED", "0")))


def _threads() -> None:
    """Ray starts its workers with OMP_NUM_THREADS=1 (its default for an actor that asks for no CPUs), so torch would
    train on one core of the CPUs the rule holds (Snakemake `threads`): the worker uses every CPU this process may run
    on (GRLO_CPU_THREADS overrides). The TaskRunner gets as many and idles while the worker computes."""
    import torch  # heavy: torch

    n = int(os.environ.get("GRLO_CPU_THREADS") or len(os.sched_getaffinity(0)))
    if torch.get_num_threads() != n:
        print(f"grlo.train.verl.cpu: torch threads {torch.get_num_threads()} -> {n} in pid {os.getpid()}", flush=True)
        torch.set_num_threads(n)


def _fp32_on_cpu() -> None:
    """`torch.autocast(device_type="cpu", ...)` becomes a disabled autocast (fp32) in this process."""
    import torch  # heavy: torch

    real = torch.autocast
    if getattr(real, "_grlo_cpu_fp32", False):
        return

    class autocast(real):
        _grlo_cpu_fp32 = True

        def __init__(self, device_type, dtype=None, enabled=True, cache_enabled=None):
            super().__init__(device_type, dtype=dtype, enabled=enabled and device_type != "cpu",
                             cache_enabled=cache_enabled)

    torch.autocast = autocast


def _torch_cpu_functions() -> None:
    import torch  # heavy: torch

    zero = lambda *a, **k: 0  # noqa: E731
    funcs = {
        "get_rng_state": lambda *a, **k: torch.get_rng_state(),
        "set_rng_state": lambda state, *a, **k: torch.set_rng_state(state),
        "manual_seed": lambda seed: torch.manual_seed(seed),
        "manual_seed_all": lambda seed: torch.manual_seed(seed),
        "empty_cache": lambda: None,
        "memory_allocated": zero, "memory_reserved": zero, "max_memory_allocated": zero,
        "max_memory_reserved": zero, "reset_peak_memory_stats": lambda *a, **k: None,
        "mem_get_info": lambda *a, **k: (0, 0),
        "set_per_process_memory_fraction": lambda *a, **k: None,
        "set_device": lambda *a, **k: None,
        "device_count": lambda: 1,
    }
    for name, f in funcs.items():
        if not hasattr(torch.cpu, name):
            setattr(torch.cpu, name, f)


def _gloo_process_groups() -> None:
    import torch.distributed as dist  # heavy: torch

    init = dist.init_process_group

    def init_process_group(*args, backend=None, **kwargs):
        return init(*args, backend="gloo", **kwargs)

    dist.init_process_group = init_process_group
    gather = dist.all_gather

    def all_gather(tensor_list, tensor, *args, **kwargs):
        if tensor.dim() == 0:  # gloo: "Expected tensor to have at least one dimension"
            tensor = tensor.reshape(1)
            tensor_list[:] = [t.reshape(1) for t in tensor_list]
        return gather(tensor_list, tensor, *args, **kwargs)

    dist.all_gather = all_gather


def _fsdp_on_cpu() -> None:
    import torch  # heavy: torch
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP  # heavy: torch

    init = FSDP.__init__

    def __init__(self, module, *args, **kwargs):
        kwargs.update(sync_module_states=False, device_id=torch.device("cpu"), cpu_offload=None)
        init(self, module, *args, **kwargs)

    FSDP.__init__ = __init__


def _sdpa_reward_model() -> None:
    from transformers import AutoModelForTokenClassification  # heavy: transformers

    load = AutoModelForTokenClassification.from_pretrained.__func__

    def from_pretrained(cls, *args, **kwargs):
        if kwargs.get("attn_implementation") == "flash_attention_2":
            kwargs["attn_implementation"] = "sdpa"
        return load(cls, *args, **kwargs)

    AutoModelForTokenClassification.from_pretrained = classmethod(from_pretrained)


def _register_rollout() -> None:
    from verl.workers.rollout import base  # heavy: verl

    base._ROLLOUT_REGISTRY[(ROLLOUT, "sync")] = ROLLOUT_CLASS
