"""`streamrec bench`: benchmarks that print figures measured on real data; none of them is a test.

May import: streams, model, eval.
"""

from __future__ import annotations
