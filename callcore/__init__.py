"""One call's decisions, pure and clock-free (sans-IO): the shell feeds it events and `now`.

`CallCore` dispatches a call's events to the parts that own each fact (the
playout tracker, the phase, the uplink, the model session, the goodbye...),
decides barge-ins, and returns messages to send, records to keep, and the
end of the call, as data.
"""

from callcore.core import CallCore, CoreConfig
from callcore.outputs import (
    BargeIn,
    CallUpdate,
    EndOfCall,
    Log,
    Output,
    Record,
    ReplaceModel,
    RunTool,
    ToModel,
    ToTwilio,
)
from callcore.records import EndReason, RecordKind
from callcore.tools import ToolResult
from callcore.watchdog import Quiet, WatchdogConfig

__all__ = [
    "BargeIn",
    "CallCore",
    "CallUpdate",
    "CoreConfig",
    "EndOfCall",
    "EndReason",
    "Log",
    "Output",
    "Quiet",
    "Record",
    "RecordKind",
    "ReplaceModel",
    "RunTool",
    "ToModel",
    "ToTwilio",
    "ToolResult",
    "WatchdogConfig",
]
