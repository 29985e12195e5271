"""The load curve as a picture: click p99, what was left unanswered and the CPU a click took
each role, by offered load, with one recommender process and with two."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["draw_load_curve"]


def draw_load_curve(latency: dict[str, Any], path: Path) -> Path | None:
    """Draw the latency section's curve to `path` (PNG); None if it has no curve."""
    curve = latency.get("curve")
    if not curve or not any(curve.values()):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom, cpu) = plt.subplots(3, 1, figsize=(7, 8.5), sharex=True, height_ratios=(2, 1, 1.4))
    bound = latency.get("sustained_bound_ms")
    for (name, runs), style in zip(curve.items(), ("o-", "s--"), strict=False):
        if not runs:
            continue
        label = name.replace("_", " ")
        rates = [r["offered_events_per_s"] for r in runs]
        top.plot(rates, [r["p99"] or float("nan") for r in runs], style, label=f"p99, {label}")
        held = [r for r in runs if r["sustained"]]
        top.plot([r["offered_events_per_s"] for r in held], [r["p99"] for r in held], "o",
                 markersize=10, markerfacecolor="none", color="green")  # fmt: skip
        bottom.plot(rates, [r["users_unanswered"] for r in runs], style, label=label)
        roles = sorted({role for r in runs for role in r.get("cpu_ms_per_event") or {}})
        for role, color in zip(roles, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False):
            ms = [(r.get("cpu_ms_per_event") or {}).get(role, float("nan")) for r in runs]
            cpu.plot(rates, ms, style, color=color, label=f"{role}, {label}", markersize=4)
    if bound:
        top.axhline(bound, color="grey", linestyle=":", label=f"held: p99 <= {bound:,.0f} ms, no backlog")
    top.set_yscale("log")
    top.set_ylabel("click-to-recommendation p99 (ms)")
    top.legend(fontsize="small")
    top.set_title("streamrec bench: clicks offered to one and two recommender processes")
    bottom.set_ylabel("users unanswered\n10 s after the load")
    cpu.set_ylabel("CPU ms per click")
    cpu.legend(fontsize="x-small", ncol=2)
    cpu.set_xlabel("clicks offered per second")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
