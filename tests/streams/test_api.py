"""The HTTP API of the session worker (all roles in one process, as `streamrec up` runs them),
asked with a real HTTP client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from streamrec.streams.kafka.topics import Topics
from streamrec.streams.replay import Collector, Replayer
from streamrec.streams.stack import WorkerProcess
from tests.conftest import SESSION_EXCLUDED_TAG, wait_for
from tests.streams.test_pipeline import NOW, _catalog, _latest

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def api(worker: WorkerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=worker.api_url, timeout=10) as client:
        wait_for(lambda: client.get("/healthz").status_code == 200, 60, what="the API to be ready")
        yield client


def _ids(body: dict[str, Any]) -> list[str]:
    return [i["item_id"] for i in body["items"]]


def test_health_document_and_docs_page(api: httpx.Client) -> None:
    health = api.get("/healthz").json()
    assert health["ready"] is True and "stored lists" in health["why"]
    spec = api.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    paths = [
        "/v1/users/{user_id}/recommendations",
        "/v1/users/{user_id}/profile",
        "/v1/items/{item_id}/similar",
    ]
    assert {*paths, "/healthz"} <= set(spec["paths"])
    assert "Recommendation" in spec["components"]["schemas"]
    page = api.get("/docs")
    assert page.headers["content-type"].startswith("text/html")
    assert "/v1/users/{user_id}/recommendations" in page.text and "/openapi.json" in page.text


def test_a_user_never_seen_gets_a_non_personal_list_that_says_so(
    api: httpx.Client, producer: Replayer, topics: Topics, vectors: Collector, ns: str
) -> None:
    _catalog(vectors, producer, topics, ns, {"metronome": "Mechanical metronome"})
    answer = wait_for(
        lambda: (lambda r: r if r.json()["items"] else None)(
            api.get("/v1/users/nobody-ever/recommendations", params={"k": 5})
        ),
        30,
        what="the new item in the API's copy",
    )
    assert answer.status_code == 200 and answer.headers["x-streamrec-list"] == "computed"
    body = answer.json()
    assert body["user_id"] == "nobody-ever" and body["trigger"] is None
    assert all(i["reasons"][0].startswith("new here") for i in body["items"])


def test_known_users_get_their_stored_list_and_filtered_lists_on_request(
    api: httpx.Client,
    producer: Replayer,
    topics: Topics,
    recommendations: Collector,
    vectors: Collector,
    ns: str,
) -> None:
    titles = {
        "oboe": "Oboe reeds, medium",
        "bassoon": "Bassoon reeds, medium soft",
        "cor": "Cor anglais reeds",
    }
    _catalog(vectors, producer, topics, ns, titles)
    tagged = {"item_id": f"{ns}-swab", "title": "Oboe cleaning swab", "tags": [f"{ns}-care"], "ts": NOW}
    banned = {
        "item_id": f"{ns}-cane",
        "title": "Oboe cane, gouged",
        "tags": [SESSION_EXCLUDED_TAG],
        "ts": NOW,
    }
    for item in (tagged, banned):
        producer.send(topics.items, item, key=item["item_id"])
    producer.flush()
    both = (tagged["item_id"], banned["item_id"])
    wait_for(
        lambda: sum(m["id"] in both for _, m in vectors.messages) >= 2, 60, what="the tagged items' vectors"
    )
    user = f"{ns}-oboist"
    text = "Great reeds, they respond well."
    review = {"user_id": user, "item_id": f"{ns}-oboe", "text": text, "rating": 5, "ts": NOW}
    producer.send(topics.reviews, review, key=user)
    producer.flush()
    published = wait_for(lambda: _latest(recommendations, user), 90, what="the user's published list")

    def stored() -> dict[str, Any] | None:
        answer = api.get(f"/v1/users/{user}/recommendations")
        return answer.json() if answer.headers["x-streamrec-list"] == "stored" else None

    body = wait_for(
        lambda: (lambda b: b if b and b["trigger"] == published["trigger"] else None)(stored()),
        30,
        what="the API to serve the published list",
    )
    assert body["items"] == published["items"]
    short = api.get(f"/v1/users/{user}/recommendations", params={"k": 2}).json()
    assert short["items"] == published["items"][:2]

    # Filters are computed on request, under the deployment's rules.
    answer = api.get(f"/v1/users/{user}/recommendations", params={"tags": f"{ns}-care"})
    assert answer.headers["x-streamrec-list"] == "computed" and _ids(answer.json()) == [tagged["item_id"]]
    shown = _ids(api.get(f"/v1/users/{user}/recommendations", params={"k": 50}).json())
    assert banned["item_id"] not in shown and f"{ns}-oboe" not in shown  # excluded tag; already reviewed
    kept = _ids(api.get(f"/v1/users/{user}/recommendations", params={"exclude": f"{ns}-bassoon"}).json())
    assert f"{ns}-bassoon" not in kept and f"{ns}-cor" in kept

    # The readable profile, and items like an item.
    profile = wait_for(
        lambda: (lambda r: r.json() if r.status_code == 200 else None)(api.get(f"/v1/users/{user}/profile")),
        30,
        what="the profile",
    )
    assert profile["user_id"] == user and profile["reviews"] == 1
    similar = api.get(f"/v1/items/{ns}-oboe/similar", params={"k": 3}).json()
    assert similar["item_id"] == f"{ns}-oboe" and len(similar["items"]) == 3
    assert f"{ns}-oboe" not in _ids(similar) and banned["item_id"] not in _ids(similar)
    assert "Oboe reeds" in similar["items"][0]["reasons"][0]

    # A withdrawn item leaves the stored list and lists computed on request alike.
    producer.send(topics.items, None, key=f"{ns}-cor")
    producer.flush()
    wait_for(
        lambda: f"{ns}-cor" not in _ids(api.get(f"/v1/users/{user}/recommendations").json()),
        30,
        what="the withdrawn item to leave the stored list",
    )
    assert f"{ns}-cor" not in _ids(api.get(f"/v1/users/{user}/recommendations", params={"k": 50}).json())
    assert api.get(f"/v1/items/{ns}-cor/similar").status_code == 404


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/v1/users/u/recommendations?k=0", 400, "k must be an integer from 1 to 100, got 0"),
        ("/v1/users/u/recommendations?k=ten", 400, "k must be an integer from 1 to 100, got 'ten'"),
        ("/v1/users/u/recommendations?top=3", 400, "unknown parameter 'top': expected k"),
        ("/v1/users/u/recommendations?tags=a,,b", 400, "tags must be 1 to 200 comma-separated"),
        ("/v1/users/nobody-ever/profile", 404, "no events of user 'nobody-ever'"),
        ("/v1/items/no-such-item/similar", 404, "item 'no-such-item' is not in the catalog"),
        ("/v2/everything", 404, "no such path '/v2/everything': see /docs"),
    ],
)
def test_bad_requests_get_a_4xx_that_says_what_was_expected(
    api: httpx.Client, path: str, status: int, says: str
) -> None:
    answer = api.get(path)
    assert answer.status_code == status
    assert says in answer.json()["message"], answer.json()
    assert api.post("/v1/users/u/recommendations").status_code == 405
