"""Simulated Twilio: signed webhooks and a Media Streams caller that plays audio like a phone."""

from simulators.twilio.caller import TwilioCaller
from simulators.twilio.script import (
    CallerScript,
    Dtmf,
    Leak,
    Noise,
    SendText,
    Silence,
    SpeakWhenHeard,
    Speech,
)
from simulators.twilio.timeline import (
    AnswerHeard,
    CallerSound,
    ClearRecord,
    HeardSegment,
    KeyPress,
    MarkRecord,
    Timeline,
    Underrun,
)
from simulators.twilio.webhook import (
    Followup,
    StreamInstruction,
    TwimlError,
    parse_followup,
    parse_twiml,
    sign,
)

__all__ = [
    "AnswerHeard",
    "CallerScript",
    "CallerSound",
    "ClearRecord",
    "Dtmf",
    "Followup",
    "HeardSegment",
    "KeyPress",
    "Leak",
    "MarkRecord",
    "Noise",
    "SendText",
    "Silence",
    "SpeakWhenHeard",
    "Speech",
    "StreamInstruction",
    "Timeline",
    "TwilioCaller",
    "TwimlError",
    "Underrun",
    "parse_followup",
    "parse_twiml",
    "sign",
]
