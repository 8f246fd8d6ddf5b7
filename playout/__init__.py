"""Playout truth: what the caller is hearing of the AI, pure and clock-free (sans-IO).

The shell reads the clock and moves bytes; `PlayoutTracker` decides.
"""

from playout.config import BYTES_PER_MS, PlayoutConfig
from playout.link import LinkEstimate, LinkStats
from playout.outbound import AudioFrame, MarkOut, Outbound
from playout.reports import (
    CancelOutcome,
    DrainStatus,
    EchoResult,
    HoldState,
    MarkEcho,
    PauseOutcome,
    PlayoutSnapshot,
    SpeakingReason,
    Truncation,
)
from playout.status import (
    NO_PLAYOUT_TS,
    format_playout_status,
    parse_playout_status,
    seconds_to_ms,
)
from playout.tracker import PlayoutTracker

__all__ = [
    "BYTES_PER_MS",
    "NO_PLAYOUT_TS",
    "AudioFrame",
    "CancelOutcome",
    "DrainStatus",
    "EchoResult",
    "HoldState",
    "LinkEstimate",
    "LinkStats",
    "MarkEcho",
    "MarkOut",
    "Outbound",
    "PauseOutcome",
    "PlayoutConfig",
    "PlayoutSnapshot",
    "PlayoutTracker",
    "SpeakingReason",
    "Truncation",
    "format_playout_status",
    "parse_playout_status",
    "seconds_to_ms",
]
