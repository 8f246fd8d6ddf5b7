"""The caller's side of the turn: each frame heard against what the caller hears, then judged.

The meter (`callcore.voice`) tells the caller's own sound from the AI's voice
coming back to their microphone; the judge (`callcore.turns`) makes verdicts
of those sounds, the service's speech events and the caller's words. This
keeps what joins them: when a frame is worth metering, the moment it was
captured, the AI audio the caller heard around it, and the caller's words
until their item's verdict says whether they are a turn of the conversation.
"""

from __future__ import annotations

from callcore.turns import Act, TurnJudge, TurnPolicy
from callcore.voice import Sound, VoiceMeter
from playout import PlayoutTracker

# The AI audio an echo in a caller frame can come from: up to this long before the
# frame (the speakerphone's own delay)...
_ECHO_DELAY_S = 0.25
# ...give or take this much (where the estimate puts the caller's ear).
_ECHO_SLACK_S = 0.04
# The pause goes this much before the stop target, besides the link's jitter (the
# caller's onset is dated by a frame that came over it, and the clear goes over it).
_PAUSE_MARGIN_S = 0.01
# The hold ends what the caller hears this much before the stop target (where the
# estimate puts their ear: over a 60 ms link with 20 ms of jitter, the caller stopped
# within 16 ms before and 10 ms after it), besides the link's jitter when Twilio's clock
# does not date the caller's frames (the onset's frame came over the link, maybe late).
_HOLD_MARGIN_S = 0.02
# A held answer whose sound ended goes on this much (a frame), and the link's jitter,
# before what Twilio has runs out.
_RELEASE_AHEAD_S = 0.02


class Listener:
    """Meter, judge and the caller's words, for one call."""

    def __init__(self, policy: TurnPolicy, frame_ms: int) -> None:
        self.meter = VoiceMeter()
        self.judge = TurnJudge(policy, frame_ms)
        self._frame_s = frame_ms / 1000
        # The caller's words waiting for their item's verdict; and the items judged.
        self._words: dict[str, str] = {}
        self._turns: set[str] = set()
        self._forgotten: set[str] = set()

    def frame(
        self,
        audio: bytes,
        tracker: PlayoutTracker,
        arrived: float,
        now: float,
        *,
        ai_turn: bool,
        interruptible: bool,
    ) -> list[Act]:
        """One frame of the caller's audio, read at `now`; it `arrived` (on time) then.

        Metered only while the AI holds the turn or a sound is being judged:
        otherwise the caller simply speaks, and nothing here costs anything.
        """
        judge = self.judge
        if not (ai_turn or judge.wants_frames):
            return []
        link = tracker.link
        # The frame left the caller's phone one way before it arrived; the tracker's
        # clock is a way behind the phone's (see `PlayoutTracker`): a round trip.
        captured = arrived - link.rtt_s - len(audio) / 8000
        start = captured - _ECHO_DELAY_S - _ECHO_SLACK_S
        end = captured + self._frame_s + _ECHO_SLACK_S
        # What the caller heard around the frame, read only if the frame is loud.
        meter = self.meter
        sound = (
            Sound.SILENT
            if meter.quiet(audio)
            else meter.feed(audio, lambda: tracker.heard_audio(start, end)).verdict
        )
        return judge.frame(
            captured,
            sound,
            now,
            ai_turn=ai_turn,
            interruptible=interruptible,
            margin_s=link.jitter_s + _PAUSE_MARGIN_S,
        )

    @staticmethod
    def release_by(until: float, tracker: PlayoutTracker) -> float:
        """When a held answer whose sound ended goes on, at the latest: Twilio, which
        plays what it has until `until`, must have more by then, however late the link
        brings it, with a frame to spare."""
        return until - tracker.link.jitter_s - _RELEASE_AHEAD_S

    @staticmethod
    def hold_until(target: float, tracker: PlayoutTracker, *, dated: bool) -> float:
        """Until when the caller may hear the answer while a sound whose stop target is
        `target` is judged; `dated`: the caller's frames are dated by Twilio's clock."""
        return target - _HOLD_MARGIN_S - (0.0 if dated else tracker.link.jitter_s)

    # --- the caller's words ----------------------------------------------------------------

    def words(self, item_id: str, text: str) -> bool:
        """The service's transcript of an item: whether they are the words of a turn of the
        conversation (False: kept until the item's verdict, or dropped if it was forgotten)."""
        if item_id in self._forgotten:
            return False
        if item_id in self._turns or not self.judge.judging(item_id):
            return True
        self._words[item_id] = text
        return False

    def answered(self, item_id: str) -> str | None:
        """The item is a turn: its words, if they came already."""
        self._turns.add(item_id)
        return self._words.pop(item_id, None)

    def forgotten(self, item_id: str) -> None:
        """The item is not a turn: its words are nobody's."""
        self._forgotten.add(item_id)
        self._words.pop(item_id, None)
