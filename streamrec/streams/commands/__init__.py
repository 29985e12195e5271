"""The `streamrec` command line: one module per command beyond `worker`, `up` and `demo`'s wiring.

May import: streams, model, eval, learn.
"""

from __future__ import annotations
