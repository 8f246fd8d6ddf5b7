"""Linux /proc readings for a benchmark: a process tree's CPU time, its peak RSS, machine load."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (which may hold spaces)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue  # the thread ended while we looked
    return found


def tree_cpu_s(pid: int) -> float:
    """utime+stime of `pid`, of its reaped children, and of every live descendant, in s."""
    fields = _stat_fields(pid)
    # Fields 14-17 of stat(5): utime, stime, cutime, cstime; here offset by the two skipped.
    ticks = sum(int(value) for value in fields[11:15])
    for child in _children(pid):
        try:
            ticks += round(tree_cpu_s(child) * _TICKS_PER_S)
        except OSError:
            continue  # it exited; its time is in cutime/cstime once reaped
    return ticks / _TICKS_PER_S


def _tree_status_mb(pid: int, key: str) -> float:
    total_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            total_kb = int(line.split()[1])
    for child in _children(pid):
        try:
            total_kb += round(_tree_status_mb(child, key) * 1024)
        except OSError:
            continue
    return total_kb / 1024


def tree_peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of `pid` plus that of its live descendants, in MiB."""
    return _tree_status_mb(pid, "VmHWM:")


def tree_rss_mb(pid: int) -> float:
    """VmRSS (resident set now) of `pid` plus that of its live descendants, in MiB."""
    return _tree_status_mb(pid, "VmRSS:")


@dataclass(frozen=True)
class MachineTicks:
    """Cumulative busy and total jiffies over all cores (first line of /proc/stat)."""

    busy: int
    total: int

    @classmethod
    def read(cls) -> MachineTicks:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = values[3] + values[4]  # idle + iowait
        total = sum(values[:8])  # guest time is already counted in user
        return cls(total - idle, total)

    def busy_pct_since(self, earlier: MachineTicks) -> float:
        """Share of all cores' time that was busy since `earlier`, in % (100 = all cores)."""
        total = self.total - earlier.total
        return 100.0 * (self.busy - earlier.busy) / total if total else 0.0
