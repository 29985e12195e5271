"""Users who asked to be forgotten, so that their earlier events stay out when they come again.

A user's events can reach a worker after their `forget` request: a review still in the encoder
when the request came, or events read again after a restart from a checkpoint older than the
request (Kafka orders nothing across topics). Each request is kept here by a one-way digest of the
user id, with its time; an event of that user written (message timestamp) at or before it is passed
over. Events the user sends after their request are theirs to have learned. A request is kept for
`keep_s` after the latest one: longer than the input topics keep their events.
"""

from __future__ import annotations

from streamrec.model.events.dedupe import fingerprint

__all__ = ["Forgotten"]


class Forgotten:
    """When each forgotten user asked, by digest.

    Examples
    --------
    >>> gone = Forgotten()
    >>> gone.mark("ann", at=100.0)
    >>> gone.covers("ann", 99.0), gone.covers("ann", 101.0), gone.covers("bob", 1.0)
    (True, False, False)
    """

    def __init__(self, keep_s: float = 90 * 86_400.0) -> None:
        self.keep_s = keep_s
        self._at: dict[bytes, float] = {}
        self._latest = 0.0

    def __len__(self) -> int:
        return len(self._at)

    def mark(self, user: str, at: float) -> None:
        """`user` asked to be forgotten at `at` (seconds, the request's message time)."""
        key = fingerprint("forget", user)
        self._at[key] = max(self._at.get(key, at), at)
        if at > self._latest:
            self._latest = at
            horizon = at - self.keep_s
            if next(iter(self._at.values())) < horizon:  # oldest first, as marked
                self._at = {k: t for k, t in self._at.items() if t >= horizon}

    def covers(self, user: str, at: float) -> bool:
        """Whether an event of `user` written at `at` came before their request (to pass over)."""
        if not self._at:
            return False  # nobody asked: no digest to compute for every event
        asked = self._at.get(fingerprint("forget", user))
        return asked is not None and at <= asked
