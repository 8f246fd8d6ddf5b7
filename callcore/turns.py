"""The caller's sounds while the AI has the turn: backchannel, noise, echo, or interruption.

The session's own turn handling is off (`interrupt_response` and
`create_response` false): the bridge judges every sound the caller makes
while the AI holds the turn (being heard, held for the caller, or about to
answer). The evidence, in the order it comes:

- the caller's own voice, frame by frame, from the echo-aware meter
  (`callcore.voice`): a sound begins at its first voiced frame, dated on the
  caller's side (capture time on the tracker's clock) and ends after
  `voice_end_ms` without voice;
- the service's speech start (it heard speech) and stop (the item is
  committed);
- the service's transcription of the item: the caller's words.

While it decides, the answer plays on up to the stop target
(`stop_target_ms` after the caller began) and not after: from the onset the
answer is held there (`Hold`: Twilio is fed only what plays by then), so if
the sound goes on, the answer runs out at the target, with nothing to clear,
take back or send again; a sound that ends first lets it go on without a
gap. If the hold came too late (Twilio already had more), the answer is
paused ahead of the target (Twilio cleared, the unheard audio kept). A sound
that ends short resumes it where the caller stopped hearing it.
A sound longer than `interrupt_after_ms` is an interruption; so are words
that are not a backchannel, and the always-stop phrases. No words (the
service heard no speech, or its transcript is empty) is noise; the AI's
own voice coming back (the meter explains the loud frames by what the
caller heard) is echo.

Sans-IO: every input takes `now`, and returns the acts for the core to carry
out in order (`Hold`, `Pause`, `Resume`, `Interrupt`, `Forget`, `Answer`,
`Decided`). `next_timer()` says when to call `timer(now)`.
"""

from __future__ import annotations

import enum
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from callcore.voice import Sound


class Verdict(enum.StrEnum):
    """What a sound the caller made while the AI had the turn was."""

    BACKCHANNEL = "backchannel"
    NOISE = "noise"
    ECHO = "echo"
    INTERRUPTION = "interruption"


class DecidedBy(enum.StrEnum):
    """The evidence that settled a verdict."""

    LENGTH = "length"  # the caller's voice went on past `interrupt_after_ms`
    STOP_WORDS = "stop_words"  # an always-stop phrase
    WORDS = "words"  # words that are not a backchannel
    BACKCHANNEL_WORDS = "backchannel_words"  # only backchannel words
    NO_WORDS = "no_words"  # the transcript is empty
    NOT_SPEECH = "not_speech"  # the service heard no speech in it
    SHORT = "short"  # short, and no words came in time
    ECHO = "echo"  # the loud frames were the AI's own voice coming back
    REPLY = "reply"  # backchannel words, once the AI had finished: a reply ("Yes.")


# Backchannels and always-stop phrases per language (ISO-639-1), lower case.
_BACKCHANNELS: dict[str, tuple[str, ...]] = {
    "en": (
        "uh-huh", "uh huh", "mm-hmm", "mm hmm", "mhm", "mm", "hmm", "yeah", "yes", "yep",
        "ok", "okay", "right", "sure", "i see", "got it", "alright", "all right", "ah", "oh",
    ),
    "es": ("sí", "si", "ajá", "vale", "claro", "ya", "mhm", "bueno", "ok", "okay"),
    "fr": ("oui", "ouais", "d'accord", "ok", "okay", "hum", "mhm", "ah", "je vois"),
    "de": ("ja", "genau", "okay", "ok", "mhm", "aha", "stimmt", "klar", "achso"),
}  # fmt: skip
_STOP_PHRASES: dict[str, tuple[str, ...]] = {
    "en": ("stop", "wait", "hold on", "hang on", "no no", "excuse me", "sorry"),
    "es": ("para", "espera", "un momento", "perdón", "no no"),
    "fr": ("stop", "attends", "attendez", "arrête", "arrêtez", "pardon", "non non"),
    "de": ("stopp", "stop", "warte", "warten sie", "moment", "halt", "nein nein"),
}

# Words, with their inner apostrophes (either kind) and hyphens: "d'accord", "uh-huh".
_WORD = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")


def words_of(text: str) -> tuple[str, ...]:
    """The words of a transcript, lower case, punctuation gone ("Uh-huh." -> ("uh-huh",))."""
    return tuple(match.group(0).replace("\u2019", "'") for match in _WORD.finditer(text.lower()))


def default_backchannels(language: str) -> tuple[str, ...]:
    """The built-in backchannels of a language (English when unknown or empty)."""
    return _BACKCHANNELS.get(language.lower()[:2], _BACKCHANNELS["en"])


def default_stop_phrases(language: str) -> tuple[str, ...]:
    """The built-in always-stop phrases of a language (English when unknown or empty)."""
    return _STOP_PHRASES.get(language.lower()[:2], _STOP_PHRASES["en"])


def _phrases(phrases: Iterable[str]) -> frozenset[tuple[str, ...]]:
    return frozenset(w for w in (words_of(p) for p in phrases) if w)


@dataclass(frozen=True, slots=True)
class TurnPolicy:
    """How the caller's sounds are judged; durations in integer ms.

    - `interrupt_after_ms`: the caller's voice this long is an interruption,
      whatever the words (backchannels are shorter).
    - `stop_target_ms`: the caller must hear no AI audio later than this after
      they began an interruption: the answer is held (or paused) there while
      the sound goes on undecided.
    - `voice_end_ms`: this long without voice ends a sound (and resumes a paused
      answer: every millisecond here is one more of silence the caller hears).
      One quiet frame by default: a pause that short inside the caller's words
      resumes the answer too, and it is held or paused again as their voice
      comes back (`join_ms`); late in a sound the caller may hear a little of
      it meanwhile.
    - `join_ms`: voice back within this long goes on with the sound before (a
      breath between words): its length counts from that sound's start.
    - `words_wait_ms`: after a short sound ends, how long its words may take;
      then it is judged short (a backchannel, or noise if the service heard
      no speech).
    - `service_wait_ms`: a short sound the service has not reported as speech
      this long after it ended is noise; so is a long one (`interrupt_after_ms`
      and more) this long after it grew that long.
    - `backchannels`, `stop_phrases`: phrases that never / always interrupt.
    """

    interrupt_after_ms: int = 550
    stop_target_ms: int = 450
    voice_end_ms: int = 20
    join_ms: int = 200
    words_wait_ms: int = 2500
    service_wait_ms: int = 400
    backchannels: tuple[str, ...] = field(default_factory=lambda: default_backchannels("en"))
    stop_phrases: tuple[str, ...] = field(default_factory=lambda: default_stop_phrases("en"))

    def __post_init__(self) -> None:
        for name in (
            "interrupt_after_ms",
            "stop_target_ms",
            "voice_end_ms",
            "join_ms",
            "words_wait_ms",
            "service_wait_ms",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"TurnPolicy.{name} must be an int >= 0, got {value!r}")

    def judge_words(self, text: str) -> tuple[Verdict, DecidedBy]:
        """What the caller's words make of a sound that did not go on long enough to decide."""
        words = words_of(text)
        if not words:
            return Verdict.NOISE, DecidedBy.NO_WORDS
        for phrase in _phrases(self.stop_phrases):
            n = len(phrase)
            if any(words[i : i + n] == phrase for i in range(len(words) - n + 1)):
                return Verdict.INTERRUPTION, DecidedBy.STOP_WORDS
        if _made_of(words, _phrases(self.backchannels)):
            return Verdict.BACKCHANNEL, DecidedBy.BACKCHANNEL_WORDS
        return Verdict.INTERRUPTION, DecidedBy.WORDS


def _made_of(words: tuple[str, ...], phrases: frozenset[tuple[str, ...]]) -> bool:
    """Whether `words` is nothing but phrases of `phrases`, one after the other."""
    longest = max((len(p) for p in phrases), default=0)
    ends = {0}  # positions up to which the words are covered
    for start in range(len(words)):
        if start in ends:
            for n in range(1, min(longest, len(words) - start) + 1):
                if words[start : start + n] in phrases:
                    ends.add(start + n)
    return len(words) in ends


# --- what the judge asks of the core ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hold:
    """Send the caller nothing they would hear after `until` (the stop target, on the
    tracker's clock): if the sound goes on, the answer runs out then, no clear needed."""

    until: float


@dataclass(frozen=True, slots=True)
class Pause:
    """The stop target is near: the caller stops hearing the AI by then (Twilio is
    cleared unless the hold already ends what it plays in time); the unheard is kept."""


@dataclass(frozen=True, slots=True)
class Resume:
    """Carry on with the answer from where the caller stopped hearing it."""


@dataclass(frozen=True, slots=True)
class Interrupt:
    """A barge-in (the caller has the turn); `deferred`: the passage is not interruptible,
    the caller is answered once it has been heard."""

    deferred: bool = False


@dataclass(frozen=True, slots=True)
class Forget:
    """The item is not a turn of the conversation: delete it from the model's memory."""

    item_id: str


@dataclass(frozen=True, slots=True)
class Answer:
    """The caller's turn is over: ask the model for its answer."""

    item_id: str


@dataclass(frozen=True, slots=True)
class Decided:
    """A verdict and its evidence, for the record. Times are on the tracker's clock."""

    verdict: Verdict
    decided_by: DecidedBy
    onset: float
    at: float
    item_ids: tuple[str, ...]
    voice_ms: int
    sounds: int
    voice_frames: int
    echo_frames: int
    words: str
    paused: bool
    interruptible: bool

    @property
    def decision_ms(self) -> int:
        """From the caller's onset to the verdict."""
        return round((self.at - self.onset) * 1000)


Act = Hold | Pause | Resume | Interrupt | Forget | Answer | Decided


class _Phase(enum.Enum):
    LISTENING = "listening"  # the caller's voice goes on
    WAITING = "waiting"  # the sound ended short: its words (or none) will tell


@dataclass(slots=True, eq=False)
class _Episode:
    """One sound of the caller's (or several close together) while the AI had the turn."""

    onset: float
    interruptible: bool
    phase: _Phase = _Phase.LISTENING
    run_start: float = 0.0
    voice_end: float = 0.0  # capture time the last voiced frame ended
    voice_ms: int = 0  # the longest run of voice
    sounds: int = 1
    voice_frames: int = 0
    echo_frames: int = 0
    items: list[str] = field(default_factory=list)
    committed: set[str] = field(default_factory=set)
    words: list[str] = field(default_factory=list)
    transcribed: set[str] = field(default_factory=set)
    held: bool = False  # the answer is held at the stop target (`Hold`), or paused
    paused: bool = False
    ever_paused: bool = False
    pause_due: float | None = None
    words_due: float | None = None
    service_due: float | None = None


# Loud frames remembered to tell whether the service's speech start was the AI's echo.
_RECENT_LOUD = 15
# Share of those since the service's speech began that must be echo...
_ECHO_SHARE = 0.8
# ...counting from this long before it began (its onset is the service's estimate).
_ECHO_LOOKBACK_S = 0.1
_ECHO_UNKNOWN_ONSET_S = 0.5
# A lone sound shorter than this is a click, not something the caller said.
_BLIP_MS = 100


class TurnJudge:
    """The verdicts of one call's sounds; see the module docstring."""

    def __init__(self, policy: TurnPolicy, frame_ms: int = 20) -> None:
        self.policy = policy
        self._frame_s = frame_ms / 1000
        self._episode: _Episode | None = None
        # Items already judged, waiting to be committed (speech stopped) to be acted on.
        self._judged: dict[str, Verdict] = {}
        # Loud frames lately: when each was captured, and whether it was echo.
        self._recent_loud: deque[tuple[float, bool]] = deque(maxlen=_RECENT_LOUD)
        # The caller has the turn (an interruption): their voice, until it ends, opens
        # no new sound to judge. When it was last heard.
        self._turn_voice_end: float | None = None
        # Voiced frames in a row while the AI does not hold the turn.
        self._free_voice = 0
        # Items of the caller's interruption not yet committed: its answer waits for them.
        self._unanswered: set[str] = set()

    @property
    def deciding(self) -> bool:
        """A sound is being judged (the answer may be held or paused for it)."""
        return self._episode is not None

    @property
    def wants_frames(self) -> bool:
        """Frames matter while the AI does not hold the turn too: a sound is being judged,
        the caller's interruption goes on, or an item judged echo may turn out theirs."""
        return self._episode is not None or bool(self._judged) or self._turn_voice_end is not None

    @property
    def pausing(self) -> bool:
        """The judge has paused the answer (and not yet resumed or cut it)."""
        return self._episode is not None and self._episode.paused

    def judging(self, item_id: str) -> bool:
        """Whether the item is a sound being judged, or judged not a turn (its words are
        nobody's until, or unless, it is found to be the caller's turn)."""
        episode = self._episode
        if episode is not None and item_id in episode.items:
            return True
        verdict = self._judged.get(item_id)
        return verdict is not None and verdict is not Verdict.INTERRUPTION

    def next_timer(self) -> float | None:
        episode = self._episode
        if episode is None:
            return None
        due = [
            at
            for at in (episode.pause_due, episode.words_due, episode.service_due)
            if at is not None
        ]
        return min(due) if due else None

    # --- inputs ---------------------------------------------------------------------------

    def frame(
        self,
        captured_at: float,
        sound: Sound,
        now: float,
        *,
        ai_turn: bool,
        interruptible: bool,
        margin_s: float,
    ) -> list[Act]:
        """One 20 ms frame of the caller's audio, judged by the meter.

        `captured_at`: when the caller began to make it, on the tracker's clock
        (its arrival less the round trip and its own length). `ai_turn`: the
        AI holds the turn (heard, held, or answering). `margin_s`: the pause is
        sent this much before the stop target (the clear's own trip varies).
        """
        if sound is not Sound.SILENT:
            self._recent_loud.append((captured_at, sound is Sound.ECHO))
        turn_voice_end = self._turn_voice_end
        if turn_voice_end is not None:
            # The caller's (or the line's) sound goes on through breaths between words.
            join_s = self.policy.join_ms / 1000
            if sound is not Sound.VOICE:
                if captured_at + self._frame_s - turn_voice_end >= join_s:
                    self._turn_voice_end = None
                return []
            if captured_at - turn_voice_end < join_s:
                self._turn_voice_end = captured_at + self._frame_s
                return []
            self._turn_voice_end = None  # that turn's voice ended long ago: a new sound
        episode = self._episode
        if sound is not Sound.VOICE:
            self._free_voice = 0
        if sound is Sound.VOICE:
            acts: list[Act] = []
            if episode is None:
                if not ai_turn:
                    self._caller_speaks_freely()
                    return []
                episode = _Episode(onset=captured_at, interruptible=interruptible)
                self._episode = episode
                acts += self._listen(episode, captured_at, margin_s)
            elif episode.phase is _Phase.WAITING:
                acts += self._new_sound(episode, captured_at, margin_s)
            episode.voice_frames += 1
            episode.voice_end = captured_at + self._frame_s
            run_ms = round((episode.voice_end - episode.run_start) * 1000)
            episode.voice_ms = max(episode.voice_ms, run_ms)
            if run_ms >= _BLIP_MS:
                self._adopt_echo_items(episode)
            if run_ms >= self.policy.interrupt_after_ms:
                if episode.items:
                    acts += self._decide(episode, Verdict.INTERRUPTION, DecidedBy.LENGTH, now)
                else:
                    # Long, and not speech to the service yet. Its word may still be on
                    # its way: it hears the onset only when we forward it, and we read
                    # its reply as late as we read these frames (a busy loop, a slow
                    # model link). Not speech `service_wait_ms` from now, it is the
                    # line's noise (`timer`); the answer stays held meanwhile.
                    self._wait_for_service(episode, now)
            return acts
        if episode is None:
            return []
        if sound is Sound.ECHO:
            episode.echo_frames += 1
        if episode.phase is _Phase.LISTENING and self._ended(captured_at, episode.voice_end):
            return self._sound_ended(episode, now, ai_turn)
        return []

    def _ended(self, captured_at: float, voice_end: float) -> bool:
        """Whether a quiet frame captured at `captured_at` ends voice last heard until
        `voice_end` (it has been quiet `voice_end_ms` by the frame's end)."""
        return captured_at + self._frame_s - voice_end >= self.policy.voice_end_ms / 1000 - 1e-9

    def speech_started(
        self,
        item_id: str,
        now: float,
        *,
        ai_turn: bool,
        onset: float | None = None,
        interruptible: bool = True,
    ) -> list[Act]:
        """The service heard speech begin (item `item_id`); `onset`: when, by its account,
        on the tracker's clock (None: unknown, taken as `now`)."""
        episode = self._episode
        if episode is not None:
            episode.items.append(item_id)
            episode.service_due = None
            if episode.voice_ms >= self.policy.interrupt_after_ms:
                # Long already: the service's word came after it grew so (`frame`).
                return self._decide(episode, Verdict.INTERRUPTION, DecidedBy.LENGTH, now)
            return []
        if not ai_turn:
            return []  # the caller's turn: answered when it ends
        start = now if onset is None else min(onset, now)
        # The loud frames since the speech the service heard began (and a little before;
        # its onset unknown, the service's detection takes a few hundred ms).
        since = start - (_ECHO_LOOKBACK_S if onset is not None else _ECHO_UNKNOWN_ONSET_S)
        loud = [echo for at, echo in self._recent_loud if at >= since]
        if loud and sum(loud) >= _ECHO_SHARE * len(loud):
            # The service took the AI's own voice, come back, for speech.
            self._judged[item_id] = Verdict.ECHO
            echo_frames = sum(loud)
            return [
                Decided(
                    Verdict.ECHO,
                    DecidedBy.ECHO,
                    now,
                    now,
                    (item_id,),
                    0,
                    0,
                    len(loud) - echo_frames,
                    echo_frames,
                    "",
                    False,
                    True,
                )
            ]
        # Speech the meter did not hear as the caller's voice: judged by its words.
        episode = _Episode(onset=start, interruptible=interruptible, phase=_Phase.WAITING)
        episode.items.append(item_id)
        episode.words_due = now + self.policy.words_wait_ms / 1000
        self._episode = episode
        return []

    def speech_stopped(self, item_id: str, now: float) -> list[Act]:
        """The service committed the item (the caller's speech ended)."""
        verdict = self._judged.pop(item_id, None)
        if verdict is not None:
            if verdict is not Verdict.INTERRUPTION:
                return [Forget(item_id)]
            # The caller's turn is answered once, when its last item is in.
            self._unanswered.discard(item_id)
            return [] if self._unanswered else [Answer(item_id)]
        episode = self._episode
        if episode is not None and item_id in episode.items:
            episode.committed.add(item_id)
            return []
        return [Answer(item_id)]  # a turn taken while the AI was silent

    def transcript(self, item_id: str, text: str, now: float, *, ai_turn: bool) -> list[Act]:
        """The service's transcript of an item; `ai_turn`: the AI still holds the turn."""
        episode = self._episode
        if episode is None or item_id not in episode.items:
            return []
        episode.transcribed.add(item_id)
        if text.strip():
            episode.words.append(text.strip())
        if episode.phase is _Phase.LISTENING or not episode.transcribed >= set(episode.items):
            return []  # the caller is still speaking, or more words are to come
        return self._by_words(episode, now, ai_turn)

    def _by_words(self, episode: _Episode, now: float, ai_turn: bool) -> list[Act]:
        verdict, decided_by = self.policy.judge_words(" ".join(episode.words))
        if verdict is Verdict.BACKCHANNEL and not ai_turn:
            # The AI has finished: "yes", "okay" now answer it (a question, maybe).
            verdict, decided_by = Verdict.INTERRUPTION, DecidedBy.REPLY
        return self._decide(episode, verdict, decided_by, now)

    def timer(self, now: float, *, ai_turn: bool = True) -> list[Act]:
        episode = self._episode
        if episode is None:
            return []
        if episode.pause_due is not None and now >= episode.pause_due:
            episode.pause_due = None
            if episode.phase is _Phase.LISTENING and not episode.paused:
                episode.paused = episode.ever_paused = episode.held = True
                return [Pause()]
        if episode.service_due is not None and now >= episode.service_due:
            going_on = episode.phase is _Phase.LISTENING
            acts = self._decide(episode, Verdict.NOISE, DecidedBy.NOT_SPEECH, now)
            if going_on:
                # The line's noise (a TV, traffic): ignored until it stops; speech over
                # it the service reports.
                self._turn_voice_end = episode.voice_end
            return acts
        if episode.words_due is not None and now >= episode.words_due:
            if not episode.voice_frames and episode.echo_frames:
                # Speech to the service, nothing but the AI's own voice to the meter.
                return self._decide(episode, Verdict.ECHO, DecidedBy.ECHO, now)
            if episode.words:
                return self._by_words(episode, now, ai_turn)
            return self._decide(episode, Verdict.BACKCHANNEL, DecidedBy.SHORT, now)
        return []

    def reset(self) -> list[Act]:
        """The AI's turn was cut another way (a new session, the call ending): nothing held."""
        episode, self._episode = self._episode, None
        self._judged.clear()
        self._unanswered.clear()
        self._turn_voice_end = None
        return [] if episode is None else self._go_on(episode)

    # --- steps ----------------------------------------------------------------------------

    def _caller_speaks_freely(self) -> None:
        """The caller's own voice while the AI does not hold the turn: the service's
        speech judged the AI's echo (it began while the AI spoke) goes on with the
        caller's words in it, and is their turn after all."""
        self._free_voice += 1
        if self._free_voice * self._frame_s * 1000 < _BLIP_MS or not self._judged:
            return
        for item_id, verdict in list(self._judged.items()):
            if verdict is Verdict.ECHO:
                del self._judged[item_id]

    def _adopt_echo_items(self, episode: _Episode) -> None:
        """The service's speech judged an echo goes on with the caller's own voice in it:
        its item is this sound's now."""
        for item_id, verdict in list(self._judged.items()):
            if verdict is Verdict.ECHO:
                del self._judged[item_id]
                episode.items.append(item_id)

    def _new_sound(self, episode: _Episode, start: float, margin_s: float) -> list[Act]:
        if episode.voice_frames == 0:
            episode.onset = start  # the first voice of a sound the service reported first
        else:
            episode.sounds += 1
        episode.phase = _Phase.LISTENING
        episode.words_due = None
        if episode.items or episode.voice_ms < self.policy.interrupt_after_ms:
            episode.service_due = None
        # else: long, and waiting for the service's word since it grew so; it keeps
        # waiting from then, not from each new run (choppy noise: a TV, typing).
        if episode.voice_frames and start - episode.voice_end < self.policy.join_ms / 1000:
            # A breath between words, not a new sound: the run (and its stop target)
            # goes on, so an answer resumed in the breath is paused again at once.
            start = episode.run_start
        return self._listen(episode, start, margin_s)

    def _listen(self, episode: _Episode, start: float, margin_s: float) -> list[Act]:
        """A run of voice from `start`: the caller hears none of the answer after the stop
        target (held there, paused ahead of it in case the hold came too late)."""
        episode.run_start = start
        if not episode.interruptible or episode.paused:
            return []
        target = start + self.policy.stop_target_ms / 1000
        episode.pause_due = target - margin_s
        episode.held = True
        return [Hold(target)]

    def _wait_for_service(self, episode: _Episode, now: float) -> None:
        """The service has `service_wait_ms` from now to call the sound speech, unless
        it is given that time already."""
        if episode.service_due is None:
            episode.service_due = now + self.policy.service_wait_ms / 1000

    def _go_on(self, episode: _Episode) -> list[Act]:
        """The answer goes on (it was held or paused for the sound)."""
        held, episode.held, episode.paused = episode.held, False, False
        return [Resume()] if held else []

    def _sound_ended(self, episode: _Episode, now: float, ai_turn: bool) -> list[Act]:
        episode.phase = _Phase.WAITING
        episode.pause_due = None
        policy = self.policy
        if episode.voice_ms >= policy.interrupt_after_ms and not episode.items:
            # Long, and the service's word on it still to come (`frame`): an
            # interruption if it heard speech, else noise; held (or paused) till then.
            self._wait_for_service(episode, now)  # (a later, shorter run of it ended)
            return []
        if episode.sounds == 1 and not episode.items and episode.voice_ms < _BLIP_MS:
            # A click, or a frame of echo the meter could not explain: nothing to judge.
            self._episode = None
            return self._go_on(episode)
        if episode.items and episode.transcribed >= set(episode.items):
            return self._by_words(episode, now, ai_turn)
        episode.words_due = now + policy.words_wait_ms / 1000
        if not episode.items:
            episode.service_due = now + policy.service_wait_ms / 1000
        return self._go_on(episode)

    def _decide(
        self, episode: _Episode, verdict: Verdict, decided_by: DecidedBy, now: float
    ) -> list[Act]:
        self._episode = None
        acts: list[Act] = [
            Decided(
                verdict,
                decided_by,
                episode.onset,
                now,
                tuple(episode.items),
                episode.voice_ms,
                episode.sounds,
                episode.voice_frames,
                episode.echo_frames,
                " ".join(episode.words),
                episode.ever_paused,
                episode.interruptible,
            )
        ]
        if verdict is Verdict.INTERRUPTION:
            acts.append(Interrupt(deferred=not episode.interruptible))
            if episode.phase is _Phase.LISTENING:
                self._turn_voice_end = episode.voice_end
        else:
            acts += self._go_on(episode)
        waiting = [item_id for item_id in episode.items if item_id not in episode.committed]
        for item_id in waiting:
            self._judged[item_id] = verdict
        if verdict is not Verdict.INTERRUPTION:
            acts += [Forget(item_id) for item_id in episode.items if item_id in episode.committed]
        elif waiting:
            self._unanswered.update(waiting)  # answered when the last of them is in
        elif episode.items:
            acts.append(Answer(episode.items[-1]))
        return acts
