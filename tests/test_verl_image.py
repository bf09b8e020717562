"""docker/verl.Dockerfile: every package pinned exactly, the pins inside verl 0.6.1's and vLLM 0.11's stated ranges,
our package installed (so verl's trainer finds the style_mix reward manager), the image named in the config."""

import re
from pathlib import Path

from grlo import config as C
from grlo.train.verl.overrides import VERL_VERSION

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "docker" / "verl.Dockerfile"
SPEC = re.compile(r'"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?([=<>!~]=?)?([A-Za-z0-9_.\-]*)"')


def pip_specs() -> dict[str, tuple[str, str]]:
    """{package: (operator, version)} of every quoted requirement in the Dockerfile's `pip install` commands."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = {}
    for line in text.splitlines():
        if line.startswith("RUN") and "pip install" in line:
            for m in SPEC.finditer(line):
                out[m.group(1).lower()] = (m.group(3) or "", m.group(4))
    return out


def v(s: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", s)[:3])


def test_every_requirement_is_an_exact_pin():
    specs = pip_specs()
    assert len(specs) > 20
    assert {k: op for k, (op, _) in specs.items() if op != "=="} == {}


def test_pins_are_verls_own_stack():
    s = {k: ver for k, (_, ver) in pip_specs().items()}
    assert s["verl"] == VERL_VERSION == "0.6.1"
    assert v("0.8.5") <= v(s["vllm"]) <= v("0.11.0")          # verl 0.6.1 [vllm] extra
    assert s["torch"] == "2.8.0" and s["torchvision"] == "0.23.0"  # vllm 0.11.0 pins
    assert v(s["transformers"]) >= v("4.55.2") and v(s["transformers"]) < (5,)
    assert v(s["numpy"]) < (2,) and (0, 8) <= v(s["tensordict"]) <= (0, 10, 0)
    assert v(s["ray"]) >= (2, 48) and "flash-attn" in s


def test_our_package_is_installed_and_the_reward_manager_checked_at_build():
    text = DOCKERFILE.read_text()
    assert "pip install --no-deps -e /opt/grlo" in text
    assert "get_reward_manager_cls('style_mix')" in text
    assert re.search(r'pip install --no-deps "verl==\d', text)


def test_config_names_the_verl_image():
    cfg = C.load([ROOT / "config" / "config.yaml"])
    assert cfg["grlo"]["engine"] == "verl" and cfg["container"]["verl_image"] != cfg["container"]["image"]
    assert C.load([ROOT / "config" / "config.yaml", ROOT / "config" / "smoke.yaml"])["grlo"]["engine"] in ("verl",
                                                                                                           "native")


def test_flash_attn_builds_with_its_setup_requirements_first():
    """flash-attn's setup.py imports wheel (and compiles with ninja) from the environment under
    --no-build-isolation: they are installed in an earlier layer, and MAX_JOBS bounds a compile fallback."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line for line in text.splitlines() if line.startswith("RUN") and "pip install" in line]
    fa = next(i for i, line in enumerate(lines) if "flash-attn" in line)
    before = " ".join(lines[:fa])
    assert all(f'"{p}==' in before for p in ("wheel", "ninja", "packaging", "psutil"))
    assert re.search(r"MAX_JOBS=\d+ pip install --no-build-isolation \"flash-attn==", lines[fa])


def test_verl_venv_pins_the_image_stack_where_cpu_allows():
    """.venv-verl (smoke mode and the tests run verl's trainer there) pins what the image pins, torch aside."""
    req = {}
    for line in (ROOT / "tests" / "verl_env" / "requirements.txt").read_text().splitlines():
        m = re.match(r"([A-Za-z0-9_.\-]+)==([^\s#]+)", line)
        if m:
            req[m.group(1).lower()] = m.group(2)
    image = {k: ver for k, (_, ver) in pip_specs().items()}
    for pkg in ("transformers", "tokenizers", "pyarrow", "datasets", "torchdata", "accelerate", "peft", "pylatexenc",
                "dill", "numpy", "tensordict"):
        assert req.get(pkg) == image[pkg], pkg
