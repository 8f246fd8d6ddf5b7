"""What the call core hands its shell, in order: messages to send, records to keep, the end."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from callcore.records import BargeInFigures, EndReason, ItemHeard, RecordKind


@dataclass(frozen=True, slots=True)
class ToTwilio:
    """A text frame for the media stream.

    `generation` is set on the audio and marks of a playout generation: one
    still queued when a barge-in cancels that generation is never sent.
    """

    text: str
    generation: int | None = None


@dataclass(frozen=True, slots=True)
class ToModel:
    """A client event for the Realtime session, sent after every earlier one."""

    text: str


@dataclass(frozen=True, slots=True)
class Record:
    """A row of the call's playout log; `at` is monotonic seconds."""

    kind: RecordKind
    at: float
    playout_status: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CallUpdate:
    """Fields of the call's own row; `ended_at` (monotonic seconds) becomes its end time."""

    fields: dict[str, Any]
    ended_at: float | None = None


@dataclass(frozen=True, slots=True)
class Log:
    """A line for the call's log (%-style; no audio, no secrets)."""

    level: int
    message: str
    args: tuple[object, ...] = ()


@dataclass(frozen=True, slots=True)
class BargeIn:
    """A barge-in: Twilio's `clear`, which the shell sends before anything else, and its evidence.

    Once the clear is sent, the shell stamps the reaction (`reacted`) and
    records the barge-in (its log line is `log_line`); every other effect of
    it (the cancel, the truncate, the dropped audio) follows as outputs of
    their own. `at` is when the speech event arrived (monotonic seconds).
    """

    clear: str
    at: float
    playout_status: str
    figures: BargeInFigures
    # How the truth was known: the speaking rule that held, the link as measured.
    evidence: dict[str, Any]
    deleted_item_ids: tuple[str, ...]
    # Each audio item of the answers it cut, in the order they played (kept whole,
    # truncated, deleted): an answer can hold several.
    items: tuple[ItemHeard, ...]
    generation: int
    # Frames held here and frames at Twilio when it was decided.
    pending_frames: int
    unplayed_frames: int

    def reacted(self, clear_sent_at: float) -> BargeIn:
        """The barge-in with its reaction: from the speech event to the clear sent."""
        reaction_ms = round((clear_sent_at - self.at) * 1000, 3)
        return replace(self, figures=replace(self.figures, reaction_ms=reaction_ms))

    def log_line(self) -> Log:
        figures = self.figures
        return Log(
            logging.INFO,
            "[EARLY_BARGE_IN] Triggered on speech START! playout_remaining_ms=%d "
            "realtime_q=%d tx_q=%d reaction_ms=%.2f reason=%s audio_end_ms=%s",
            (
                figures.playout_remaining_ms,
                self.pending_frames,
                self.unplayed_frames,
                figures.reaction_ms,
                self.evidence["speaking_reason"],
                figures.audio_end_ms,
            ),
        )

    def log_details(self) -> dict[str, Any]:
        """The details of its playout-log row: every figure, the evidence, what it undid."""
        return {
            **asdict(self.figures),
            **self.evidence,
            "deleted_item_ids": list(self.deleted_item_ids),
            "items": [asdict(item) for item in self.items],
            "generation": self.generation,
        }


@dataclass(frozen=True, slots=True)
class ReplaceModel:
    """The model session went quiet or away: close it and open a new one.

    The client events that follow (the conversation so far, maybe a
    `response.create`) are for the new session; the shell reports back with
    `CallCore.model_replaced` or `model_replace_failed`.
    """

    attempt: int


@dataclass(frozen=True, slots=True)
class RunTool:
    """Run the host tool `name` with the model's `arguments` (JSON text); `asked_at` is when
    the model's call was complete (monotonic s). Report with `CallCore.tool_finished`."""

    call_id: str
    name: str
    arguments: str
    asked_at: float


@dataclass(frozen=True, slots=True)
class EndOfCall:
    """The call is over: close both sockets. Everything to record came before it."""

    reason: EndReason


Output = (
    ToTwilio | BargeIn | ToModel | Record | CallUpdate | Log | ReplaceModel | RunTool | EndOfCall
)
