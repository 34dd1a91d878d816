"""Group housekeeping jobs."""

from __future__ import annotations

from agnes.jobs import JobStatus, enqueue, set_progress
from agnes.models import groups
from agnes.state import state_store

# One recount in flight at a time.
RECOUNT_JOB_ID = "recompute-group-member-counts"


def start_recount(*, owner_id: str | None) -> JobStatus:
    """Queue the member recount (or return the one in flight)."""
    return enqueue(
        run_recompute_group_member_counts,
        job_id=RECOUNT_JOB_ID,
        description="Recompute group member counts",
        owner_id=owner_id,
    )


def run_recompute_group_member_counts() -> dict[str, int]:
    """Count each group's members and store the figure with the time it was taken.

    Idempotent. Returns ``{group_name: members}``. One short unit of work per group, so a
    large directory never holds the state store for long.
    """
    with state_store().read() as con:
        all_groups = groups.list_groups(con)
    counts: dict[str, int] = {}
    for index, group in enumerate(all_groups):
        set_progress(index, len(all_groups), f"Counting {group.name}")
        with state_store().write() as con:
            members = len(groups.list_members(con, group.id))
            groups.record_member_count(con, group.id, members)
        counts[group.name] = members
    set_progress(len(all_groups), len(all_groups), "Done")
    return counts
