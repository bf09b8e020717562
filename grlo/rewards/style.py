"""`style_mix`: the RM score combined with style terms (the official reward manager is unreleased).

ASSUMPTION (ours, documented in config/config.yaml): the launcher names a custom reward manager `style_mix` whose
code is not public; only the name is known ("a mix of the RM score with some style term"). We define

    reward = w_rm * rm_score + w_truncated * truncated + w_repetition * repetition + w_length * length

with  truncated  = 1 if the response hit max_response_length without EOS, else 0
      repetition = fraction of repeated word 4-grams in the response (0 = none, -> 1 = degenerate loops)
      length     = response tokens / max_response_length (0..1)

Default weights (config `grlo.reward.style_mix`): w_rm 1, w_truncated -1, w_repetition -1, w_length 0; setting every
style weight to 0 gives the pure RM score. Every component is logged separately (`reward/<name>_mean`).
"""

from __future__ import annotations

from dataclasses import dataclass

from grlo.errors import GrloError

TERMS = ("truncated", "repetition", "length")


def repetition_fraction(text: str, n: int = 4) -> float:
    words = text.split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


@dataclass
class StyleMix:
    w_rm: float = 1.0
    w_truncated: float = -1.0
    w_repetition: float = -1.0
    w_length: float = 0.0
    max_response_length: int = 1

    @classmethod
    def from_config(cls, sec: dict | None, max_response_length: int) -> "StyleMix":
        sec = dict(sec or {})
        w = sec.pop("weights", sec)
        unknown = set(w) - {"rm", *TERMS}
        if unknown:
            raise GrloError(f"unknown style_mix weight(s) {sorted(unknown)} (known: rm, {', '.join(TERMS)})",
                            field="grlo.reward.style_mix.weights")
        d = cls()
        return cls(w_rm=float(w.get("rm", d.w_rm)), w_truncated=float(w.get("truncated", d.w_truncated)),
                   w_repetition=float(w.get("repetition", d.w_repetition)), w_length=float(w.get("length", d.w_length)),
                   max_response_length=max(1, int(max_response_length)))

    def components(self, rm_scores, texts, lengths, truncated) -> dict[str, list[float]]:
        return {
            "rm": [float(x) for x in rm_scores],
            "truncated": [1.0 if t else 0.0 for t in truncated],
            "repetition": [repetition_fraction(t) for t in texts],
            "length": [min(1.0, n / self.max_response_length) for n in lengths],
        }

    def __call__(self, rm_scores, texts, lengths, truncated) -> tuple[list[float], dict[str, list[float]]]:
        parts = self.components(rm_scores, texts, lengths, truncated)
        w = {"rm": self.w_rm, "truncated": self.w_truncated, "repetition": self.w_repetition, "length": self.w_length}
        total = [sum(w[k] * parts[k][i] for k in w) for i in range(len(parts["rm"]))]
        return total, parts
