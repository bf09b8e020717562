"""The one place where verl 0.6.1 is made importable next to transformers 5, and models written by transformers 5
readable by the verl image's transformers 4.x.

verl 0.6.1 imports `transformers.AutoModelForVision2Seq`, which transformers 5 removed (its successor is
`AutoModelForImageTextToText`): a no-op in the verl image (docker/verl.Dockerfile) and in `.venv-verl`, which both
pin verl's transformers 4.56.2; it matters where verl's modules are imported next to transformers 5.

The other way round: a tokenizer saved by transformers 5 (our tiny stand-ins, the smoke models) names its class
`TokenizersBackend`, which transformers 4.x does not have; there it is the fast tokenizer, `PreTrainedTokenizerFast`.
"""

from __future__ import annotations


def ensure_transformers_aliases() -> None:
    """Set the removed auto class as an alias of its successor; call before importing verl modules that need it."""
    import transformers  # heavy: transformers

    if not hasattr(transformers, "AutoModelForVision2Seq") and hasattr(transformers, "AutoModelForImageTextToText"):
        transformers.AutoModelForVision2Seq = transformers.AutoModelForImageTextToText
    if not hasattr(transformers, "TokenizersBackend"):
        transformers.TokenizersBackend = transformers.PreTrainedTokenizerFast
