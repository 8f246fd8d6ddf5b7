"""Simulated OpenAI Realtime server (GA protocol, optional beta event names)."""

from simulators.realtime.conversation import Conversation, Item
from simulators.realtime.recording import Recorded, SessionRecording
from simulators.realtime.script import (
    Disconnect,
    GoSilent,
    Part,
    RealtimeScript,
    Reply,
    SendError,
)
from simulators.realtime.server import RealtimeSimulator
from simulators.realtime.session import RealtimeSession

__all__ = [
    "Conversation",
    "Disconnect",
    "GoSilent",
    "Item",
    "Part",
    "RealtimeScript",
    "RealtimeSession",
    "RealtimeSimulator",
    "Recorded",
    "Reply",
    "SendError",
    "SessionRecording",
]
