"""Simulated Twilio: signed webhooks and a Media Streams caller that plays audio like a phone."""

from simulators.twilio.caller import TwilioCaller
from simulators.twilio.script import CallerScript, SendText, Silence, SpeakWhenHeard, Speech
from simulators.twilio.timeline import ClearRecord, HeardSegment, MarkRecord, Timeline, Underrun
from simulators.twilio.webhook import StreamInstruction, TwimlError, parse_twiml, sign

__all__ = [
    "CallerScript",
    "ClearRecord",
    "HeardSegment",
    "MarkRecord",
    "SendText",
    "Silence",
    "SpeakWhenHeard",
    "Speech",
    "StreamInstruction",
    "Timeline",
    "TwilioCaller",
    "TwimlError",
    "Underrun",
    "parse_twiml",
    "sign",
]
