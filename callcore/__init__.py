"""One call's decisions, pure and clock-free (sans-IO): the shell feeds it events and `now`.

`CallCore` owns the playout tracker, the barge-in decision and its evidence,
the goodbye drain, the input clock and the call's statistics; it returns
messages to send, records to keep, and the end of the call, as data.
"""

from callcore.core import CallCore, CoreConfig
from callcore.outputs import (
    BargeInRecord,
    CallUpdate,
    Clear,
    EndOfCall,
    Log,
    Output,
    Record,
    ReplaceModel,
    ToModel,
    ToTwilio,
)
from callcore.records import EndReason, RecordKind
from callcore.watchdog import Quiet, WatchdogConfig

__all__ = [
    "BargeInRecord",
    "CallCore",
    "CallUpdate",
    "Clear",
    "CoreConfig",
    "EndOfCall",
    "EndReason",
    "Log",
    "Output",
    "Quiet",
    "Record",
    "RecordKind",
    "ReplaceModel",
    "ToModel",
    "ToTwilio",
    "WatchdogConfig",
]
