"""Training what `model/` runs on a shop's own data (the encoder), judged with `eval/`.

May import: model, eval.
"""

from __future__ import annotations
