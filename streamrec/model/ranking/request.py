"""The request: what the ranker needs to know of one user."""

from __future__ import annotations

from dataclasses import dataclass, field

from streamrec.model.base import FloatArray
from streamrec.model.users.profile import UserProfile

__all__ = ["Request"]


@dataclass
class Request:
    """What the ranker needs to know of one user."""

    profile: UserProfile | None = None
    cf_vector: FloatArray | None = None
    exclude: set[str] = field(default_factory=set)
    #: Only items with one of these tags (a request's filter, on top of the deployment's rules).
    tags: frozenset[str] = frozenset()
    #: Whose list it is: the candidates ranked are remembered under this name, to learn the blend
    #: from what the user takes next ("": not remembered).
    user: str = ""
