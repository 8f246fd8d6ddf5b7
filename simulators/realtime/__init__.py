"""Simulated OpenAI Realtime server (GA protocol, optional beta event names)."""

from simulators.realtime.conversation import Conversation, Item
from simulators.realtime.recording import (
    FunctionCallOutput,
    Recorded,
    ResponseCreate,
    SessionRecording,
)
from simulators.realtime.script import (
    Disconnect,
    GoSilent,
    Part,
    RealtimeScript,
    Reply,
    SendError,
    ToolCall,
)
from simulators.realtime.server import RealtimeSimulator
from simulators.realtime.session import RealtimeSession

__all__ = [
    "Conversation",
    "Disconnect",
    "FunctionCallOutput",
    "GoSilent",
    "Item",
    "Part",
    "RealtimeScript",
    "RealtimeSession",
    "RealtimeSimulator",
    "Recorded",
    "Reply",
    "ResponseCreate",
    "SendError",
    "SessionRecording",
    "ToolCall",
]
