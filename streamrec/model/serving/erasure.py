"""Erasing a user: their profile, CF vector and every event of theirs in the shared counts."""

from __future__ import annotations

from streamrec.model.serving.state import RecommenderState
from streamrec.model.users.contributions import Contributions
from streamrec.model.users.profile import ACTION_WEIGHTS, NEGATIVE_ACTIONS, UserProfile

__all__ = ["Erasure"]


class Erasure(RecommenderState):
    """Forgetting a user, as if none of their events had been seen."""

    def forget(self, user_id: str) -> bool:
        """Erase a user: profile, CF vector, and every event of theirs in popularity, co-occurrence
        and take counts."""
        profile = self.profiles.pop(user_id, None)
        found = self.user_cf.pop(user_id, None) is not None or profile is not None
        found = user_id in self.contributions or found
        self._uncount(user_id, profile)
        if profile is not None:
            self.habits.untake(*profile.list_takes)
        model = self.ranker.item_model
        if found and model is not None and (model.fitted or self._fitting is not None):
            # The item-to-item weights are learned from every user's takes: learned again without
            # theirs (a fit begun elsewhere with them is then not installed).
            self.fit_item_model()
        return found

    def _uncount(self, user_id: str, profile: UserProfile | None) -> None:
        """Take every event of a user back out of the aggregates (`_count` in reverse); a user
        counted before contributions were kept is taken back as far as their profile reaches."""
        if user_id in self.contributions:
            takes = self.contributions.pop(user_id)
        elif profile is not None:
            takes = [
                (item, ts, 0.0 if action in NEGATIVE_ACTIONS else ACTION_WEIGHTS.get(action, 1.0))
                for item, ts, action in profile.history
            ]
        else:
            return
        for item_id, ts, weight, recent in Contributions.replay(takes, self.cooccurrence.window):
            self.popularity.unlearn(item_id, weight, ts)
            if weight > 0:
                self.cooccurrence.unlearn_one(recent, item_id)
