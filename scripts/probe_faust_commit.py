"""Where the installed faust commits when the record at the committed offset was never acked.

    python scripts/probe_faust_commit.py

faust decides what to commit in `Consumer._new_offset` from the offsets its streams acked. A
record a stream drops without acking it (one that reaches the stream while flow is suspended, or
from a past group generation, as after a restart or a rebalance) leaves a hole at the head of
that list. This asks faust's own method, on its own bookkeeping, where it commits then: a commit
past the hole loses the record for good (the next start reads after it). streamrec's roles do
not read through faust's streams for this reason (`streamrec.streams.kafka.consumer`).
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

from faust.transport.consumer import Consumer
from faust.types import TP
from intervaltree import IntervalTree


def commit_after(committed: int, acked: list[int]) -> int | None:
    """The offset faust commits for a partition committed up to `committed` (the next offset to
    read) whose streams acked `acked`."""
    tp = TP("reviews-encoded", 0)
    books = SimpleNamespace(
        _acked=defaultdict(list, {tp: list(acked)}),
        _acked_index=defaultdict(set, {tp: set(acked)}),
        _gap=defaultdict(IntervalTree),
        _committed_offset=defaultdict(lambda: None, {tp: committed}),
    )
    offset: int | None = Consumer._new_offset(books, tp)  # type: ignore[arg-type]
    return offset


def main() -> None:
    cases = [
        ("every record acked", 109, [109, 110, 111]),
        ("109 never acked (a hole of one)", 109, [110, 111]),
        ("109 and 110 never acked (a hole of two)", 109, [111, 112]),
    ]
    print("committed 109 (109 is the next record to read)")
    for what, committed, acked in cases:
        offset = commit_after(committed, acked)
        lost = [] if offset is None else [o for o in range(committed, offset) if o not in acked]
        verdict = f"commits {offset}" if offset is not None else "commits nothing (waits for the hole)"
        print(f"  {what:42s} acked {acked}: {verdict}" + (f", past never-acked {lost}" if lost else ""))


if __name__ == "__main__":
    main()
