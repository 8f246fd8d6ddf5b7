"""Named call scenarios: what the model says, what the caller does, and what must happen.

Each scenario pairs a Realtime script with a caller script and states the
expected outcome; `calls.demo.simulation` runs it over real sockets and judges the
result against these expectations. Response k of a call carries tone k, so
what the caller heard can be attributed to the response it came from.
Audio is kept short so the whole set runs in well under a minute.

The tool and transfer scenarios call from the reference host's demo customer
(`DEMO_CUSTOMER`, whom its `manage.py seed_shop` creates): that host's hooks
give this caller its shop's agent, "orders", with its tools and its billing
desk. A scenario that names the agent it needs (`Expect.agent`) makes sense
only where the host gives its caller that agent.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulators.link import LinkProfile
from simulators.realtime import Disconnect, GoSilent, Part, RealtimeScript, Reply, ToolCall
from simulators.signals import tone_for_item
from simulators.twilio import CallerScript, Leak, Silence, SpeakWhenHeard

GREETING = "Hello, thanks for calling. How can I help?"
# Long answers with about as many words as people say in that time (2.5 a second),
# so what the caller heard of them can be told in words.
OPENING_HOURS = (
    "Our store on Main Street opens at nine in the morning on weekdays and at ten "
    "on Saturdays, and it stays open until six in the evening, except on public "
    "holidays, when we close at noon."
)
SHIPPING = "Your order ships on Monday by express courier and reaches you in two days."
ONE_MORE = "And one more thing: your receipt is in your email."
# An answer in two audio items, as newer models (`gpt-realtime-2`) send one.
FIRST_PART = "Your order is packed and waits at our warehouse."
SECOND_PART = (
    "It leaves on Monday with the express courier, who brings it to your door within "
    "two working days, and you get a text message with the tracking link."
)
# The tone of the second audio item of the call's first response.
SECOND_ITEM = tone_for_item(1, 2)
# Twilio's media server across the internet: every message late by 60 ms, up to 40 more.
INTERNET = LinkProfile(delay_ms=60, jitter_ms=40)

# The reference host's demo customer (its `seed_shop` takes the number from here), and
# what the shop's agent says to them.
DEMO_CUSTOMER = "+15005550042"
SHOP_GREETING = "Hello Ada, thanks for calling the shop. How can I help?"
DEMO_ORDER = "1042"
# The caller asks once the greeting has played (what a greeting_answer caller does).
ASK = SpeakWhenHeard(tone=1, after_ms=1300, speech_ms=700)
# A question once the greeting has played (the turn-taking scenarios), over the internet.
QUESTION = SpeakWhenHeard(tone=1, after_ms=800, speech_ms=700, text="When are you open tomorrow?")
HOURS = (
    "We open at nine tomorrow morning and close at six in the evening, and on Saturday "
    "we open at ten and close at four."
)
PHONE_LINE = LinkProfile(delay_ms=60, jitter_ms=20)


@dataclass(frozen=True)
class Expect:
    """The outcome a scenario must show."""

    end_reason: str
    closed_by: str
    barge_ins: int = 0
    interrupted_tone: int | None = None  # the response the caller cut off
    model_still_generating: bool | None = None  # was response.cancel due at the barge-in?
    ai_silent_speech: int = 0  # caller turns judged "AI silent" (not barge-ins)
    heard_in_full: tuple[int, ...] = ()  # tones the caller must hear to the end
    goodbye_tone: int | None = None  # the call must end right after this tone played
    hangup_cancelled: bool = False
    truncate_rejected: str | None = None  # "retried" or "deleted": how the refusal ended
    truncate_code: str | None = None  # the code the model refused the truncate with
    # Tones of audio items the caller never heard, gone from the model's memory too.
    unheard_deleted: tuple[int, ...] = ()
    # When they were deleted: "barge_in" (their audio had come), "response_done" (none had).
    unheard_deleted_at: str | None = None
    model_recoveries: int = 0  # replacement sessions that took over the call
    caller_told: bool = False  # the caller heard the apology before the call ended
    # The review's suspect rules (`calls.review.findings`) this call must raise. With
    # "drain_before_final_mark" the goodbye's drain ends on its deadline, unconfirmed.
    flagged: tuple[str, ...] = ()
    # The agent the host's hooks must give the call (None: whichever it gives).
    agent: str | None = None
    # The host's tools the call ran, in order, as recorded: (name, outcome).
    tools: tuple[tuple[str, str], ...] = ()
    holding_lines: int = 0  # at least this many holding lines while a tool ran
    # The transfer target (the agent's name for it) Twilio must dial once the handoff
    # line has played; None: the caller is never transferred.
    transferred_to: str | None = None
    # The verdicts on the caller's sounds while the AI spoke, in order (None: any).
    verdicts: tuple[str, ...] | None = None
    # A response the caller's sounds must not cut: at least 98 % of it heard, in order,
    # with at most 200 ms of gap in all, not truncated, and the sounds never answered.
    heard_whole: int | None = None
    # The caller who interrupts hears no AI audio later than this after they began.
    stopped_within_ms: int | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    story: str
    realtime: RealtimeScript
    caller: CallerScript
    expect: Expect
    # Scripts of the sessions that replace the first, in order (a replacement
    # beyond them follows the stack's default script).
    replacements: tuple[RealtimeScript, ...] = ()
    # The network between Twilio and the server it runs over by default (none: local).
    link: LinkProfile | None = None
    # The number the caller calls from (None: the Twilio stand-in's own).
    from_number: str | None = None

    def part(self, tone: int) -> tuple[Reply, int]:
        """The reply carrying `tone`, and which of its audio items (1-based) does."""
        for index in range(1, len(self.realtime.replies) + 2):
            reply = self.realtime.reply_for(index)
            for number in range(1, len(reply.parts) + 1):
                if tone_for_item(index, number) == tone:
                    return reply, number
        return self.realtime.reply_for(tone), 1

    def reply_ms(self, tone: int) -> int:
        """How long the audio item carrying `tone` is."""
        reply, number = self.part(tone)
        return reply.parts[number - 1].audio_ms

    def scripted_calls(self) -> tuple[tuple[int, ToolCall], ...]:
        """The function calls the model makes, with the tone of the response making each
        (`end_call` included)."""
        return tuple(
            (index, call)
            for index, reply in enumerate(self.realtime.replies, 1)
            for call in reply.calls
        )


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        name="greeting_answer",
        title="Greeting, a question, an answer",
        story="The AI greets; the caller asks once the greeting has played; the AI answers.",
        realtime=RealtimeScript(replies=(Reply(1200, GREETING), Reply(1200, "Sure, it is open."))),
        caller=CallerScript(
            segments=(SpeakWhenHeard(tone=1, after_ms=1600, speech_ms=700), Silence(3200)),
            hangup="stop",
        ),
        expect=Expect(
            end_reason="caller_hangup",
            closed_by="caller",
            ai_silent_speech=1,
            heard_in_full=(1, 2),
        ),
    ),
    Scenario(
        name="barge_in_generating",
        title="Barge-in while the model is still generating",
        story=(
            "A long answer is still streaming from the model when the caller cuts in: "
            "Twilio's buffer is cleared, the response cancelled and truncated."
        ),
        # At 6x real time a 12 s answer is still streaming 2 s in.
        realtime=RealtimeScript(replies=(Reply(12000, OPENING_HOURS), Reply(600))),
        caller=CallerScript(
            segments=(SpeakWhenHeard(tone=1, after_ms=700, speech_ms=600), Silence(2000)),
            hangup="stop",
        ),
        expect=Expect(
            end_reason="caller_hangup",
            closed_by="caller",
            barge_ins=1,
            interrupted_tone=1,
            model_still_generating=True,
            heard_in_full=(2,),
        ),
    ),
    Scenario(
        name="barge_in_tail",
        title="Barge-in in the playout tail (the original bug)",
        story=(
            "The model has finished sending a 6 s answer; it is still playing in the "
            "caller's ear when the caller speaks 2 s into it. A bridge that trusts the "
            "model's last delta calls this 'AI silent'; the playout truth catches it."
        ),
        realtime=RealtimeScript(replies=(Reply(6000, SHIPPING), Reply(600)), speed=30),
        caller=CallerScript(
            segments=(SpeakWhenHeard(tone=1, after_ms=2000, speech_ms=600), Silence(2000)),
            hangup="stop",
        ),
        expect=Expect(
            end_reason="caller_hangup",
            closed_by="caller",
            barge_ins=1,
            interrupted_tone=1,
            model_still_generating=False,
            heard_in_full=(2,),
        ),
    ),
    Scenario(
        name="truncate_clamped",
        title="A truncate refused for its length is retried at the model's length",
        story=(
            "The model holds only 1.5 s of the 6 s answer it streamed, so the truncate "
            "at what the caller heard is refused, stating the length it has; the bridge "
            "truncates there instead and the conversation goes on."
        ),
        realtime=RealtimeScript(
            replies=(Reply(6000, SHIPPING), Reply(600)), speed=30, held_short_ms=4500
        ),
        caller=CallerScript(
            segments=(SpeakWhenHeard(tone=1, after_ms=2000, speech_ms=600), Silence(2000)),
            hangup="stop",
        ),
        expect=Expect(
            end_reason="caller_hangup",
            closed_by="caller",
            barge_ins=1,
            interrupted_tone=1,
            model_still_generating=False,
            heard_in_full=(2,),
            truncate_rejected="retried",
            truncate_code="invalid_value",
        ),
        link=INTERNET,
    ),
    Scenario(
        name="truncate_refused",
        title="A truncate refused outright: the item is deleted, the call talks on",
        story=(
            "The model refuses to truncate the interrupted answer at all; other bridges "
            "went silent for the rest of the call here. The item is deleted so no unheard "
            "words stay in the model's memory, and the next answer plays."
        ),
        realtime=RealtimeScript(
            replies=(Reply(6000, SHIPPING), Reply(600)), speed=30, reject_truncates=1
        ),
        caller=CallerScript(
            segments=(SpeakWhenHeard(tone=1, after_ms=2000, speech_ms=600), Silence(2000)),
            hangup="stop",
        ),
        expect=Expect(
            end_reason="caller_hangup",
            closed_by="caller",
            barge_ins=1,
            interrupted_tone=1,
            model_still_generating=False,
            heard_in_full=(2,),
            truncate_rejected="deleted",
            truncate_code="unsupported_content_type",
        ),
        link=INTERNET,
    ),
    Scenario(
        name="truncate_refused_negative",
        title="A truncate refused as negative: the item is deleted, the call talks on",
        story=(
            "The model refuses the truncate with the schema's own error (an audio_end_ms "
            "below zero, as other bridges have sent): whatever the code, the item goes and "
            "the next answer plays."
        ),
        realtime=RealtimeScript(
            replies=(Reply(6000, SHIPPING), Reply(600)),
            speed=30,
            refuse_truncates_with=("integer_below_min_value",),
        ),
        caller=CallerScript(
            segments=(SpeakWhenHeard(tone=1, after_ms=2000, speech_ms=600), Silence(2000)),
            hangup="stop",
        ),
        expect=Expect(
            end_reason="caller_hangup",
            closed_by="caller",
            barge_ins=1,
            interrupted_tone=1,
            model_still_generating=False,
            heard_in_full=(2,),
            truncate_rejected="deleted",
            truncate_code="integer_below_min_value",
        ),
        link=INTERNET,
    ),
    Scenario(
        name="two_items_heard_whole",
        title="An answer in two audio items, heard whole",
        story=(
            "Newer models put several audio items in one answer, the first one's end only "
            "after the second one's first audio: the caller hears both, back to back, in "
            "full; nothing is truncated or deleted."
        ),
        realtime=RealtimeScript(
            replies=(
                Reply(1500, FIRST_PART, more_items=(Part(2500, SECOND_PART),), late_item_done=True),
            ),
        ),
        caller=CallerScript(segments=(Silence(5500),), hangup="stop"),
        expect=Expect(
            end_reason="caller_hangup", closed_by="caller", heard_in_full=(1, SECOND_ITEM)
        ),
        link=INTERNET,
    ),
    Scenario(
        name="barge_in_second_item",
        title="Barge-in in the second audio item of an answer",
        story=(
            "The caller cuts in a second into the answer's second audio item: it is "
            "truncated to what was heard of it, and the first, heard whole, stays whole."
        ),
        realtime=RealtimeScript(
            replies=(
                Reply(1500, FIRST_PART, more_items=(Part(5000, SECOND_PART),), late_item_done=True),
                Reply(600),
            ),
            speed=30,
        ),
        caller=CallerScript(
            segments=(
                SpeakWhenHeard(tone=SECOND_ITEM, after_ms=1000, speech_ms=600),
                Silence(2000),
            ),
            hangup="stop",
        ),
        expect=Expect(
            end_reason="caller_hangup",
            closed_by="caller",
            barge_ins=1,
            interrupted_tone=SECOND_ITEM,
            model_still_generating=False,
            heard_in_full=(1, 2),
        ),
        link=INTERNET,
    ),
    Scenario(
        name="barge_in_first_item",
        title="Barge-in in the first audio item while the second is generating",
        story=(
            "The caller cuts into the answer's first item while the model already sends "
            "the second: the first is truncated to what was heard, the second, never "
            "heard, is deleted from the model's memory (it must not think it said it)."
        ),
        # At 6x real time the 2.5 s first item is out in 0.4 s; the 12 s second one is
        # still streaming when the caller speaks a second in.
        realtime=RealtimeScript(
            replies=(
                Reply(
                    2500, FIRST_PART, more_items=(Part(12000, SECOND_PART),), late_item_done=True
                ),
                Reply(600),
            ),
        ),
        caller=CallerScript(
            segments=(SpeakWhenHeard(tone=1, after_ms=1000, speech_ms=600), Silence(2000)),
            hangup="stop",
        ),
        expect=Expect(
            end_reason="caller_hangup",
            closed_by="caller",
            barge_ins=1,
            interrupted_tone=1,
            model_still_generating=True,
            heard_in_full=(2,),
            unheard_deleted=(SECOND_ITEM,),
            unheard_deleted_at="barge_in",
        ),
        link=INTERNET,
    ),
    Scenario(
        name="barge_in_before_second_item_audio",
        title="Barge-in while the answer's second item is announced, with no audio yet",
        story=(
            "The model has announced the answer's second audio item but not sent a byte "
            "of it when the caller cuts into the first: the first is truncated, and the "
            "second, known only by its announcement, is deleted when the answer is done."
        ),
        realtime=RealtimeScript(
            replies=(
                Reply(
                    2500,
                    FIRST_PART,
                    more_items=(Part(3000, SECOND_PART, first_audio_after_ms=12000),),
                ),
                Reply(600),
            ),
        ),
        caller=CallerScript(
            segments=(SpeakWhenHeard(tone=1, after_ms=1000, speech_ms=600), Silence(2000)),
            hangup="stop",
        ),
        expect=Expect(
            end_reason="caller_hangup",
            closed_by="caller",
            barge_ins=1,
            interrupted_tone=1,
            model_still_generating=True,
            heard_in_full=(2,),
            unheard_deleted=(SECOND_ITEM,),
            unheard_deleted_at="response_done",
        ),
        link=INTERNET,
    ),
    Scenario(
        name="barge_in_back_to_back",
        title="Barge-in on the second of two answers back to back",
        story=(
            "The model says two things in a row, the second queued right behind the "
            "first; the caller cuts into the second: only it is cleared and truncated."
        ),
        realtime=RealtimeScript(
            replies=(Reply(1200, GREETING), Reply(3000, ONE_MORE), Reply(600)),
            back_to_back=1,
        ),
        caller=CallerScript(
            segments=(SpeakWhenHeard(tone=2, after_ms=900, speech_ms=600), Silence(2000)),
            hangup="stop",
        ),
        expect=Expect(
            end_reason="caller_hangup",
            closed_by="caller",
            barge_ins=1,
            interrupted_tone=2,
            model_still_generating=False,
            heard_in_full=(1, 3),
        ),
    ),
    Scenario(
        name="speech_after_playout",
        title="Speech after the AI has finished (not a barge-in)",
        story="The greeting has fully played when the caller starts to talk: no clear, no cut.",
        realtime=RealtimeScript(replies=(Reply(800, GREETING), Reply(600))),
        caller=CallerScript(
            segments=(SpeakWhenHeard(tone=1, after_ms=1800, speech_ms=600), Silence(2000)),
            hangup="stop",
        ),
        expect=Expect(
            end_reason="caller_hangup",
            closed_by="caller",
            ai_silent_speech=1,
            heard_in_full=(1, 2),
        ),
    ),
    Scenario(
        name="goodbye_drain",
        title="Goodbye with end_call, drained before hanging up",
        story=(
            "The model says goodbye and calls end_call as its audio is still queued: "
            "the call ends right after the goodbye has played, not before, not seconds later."
        ),
        realtime=RealtimeScript(
            replies=(Reply(600, GREETING), Reply(1500, "Goodbye!", end_call=True)), speed=10
        ),
        caller=CallerScript(segments=(SpeakWhenHeard(tone=1, after_ms=900, speech_ms=500),)),
        expect=Expect(
            end_reason="agent_hangup",
            closed_by="server",
            ai_silent_speech=1,
            heard_in_full=(1, 2),
            goodbye_tone=2,
        ),
    ),
    Scenario(
        name="goodbye_final_mark_lost",
        title="Goodbye whose final mark Twilio never echoes (a call to review)",
        story=(
            "As goodbye_drain, but Twilio loses every mark echo once the goodbye plays: the "
            "caller hears it all, the drain gives up on its deadline and the call ends; the "
            "review flags the call, since nothing confirmed the goodbye was heard."
        ),
        realtime=RealtimeScript(
            replies=(Reply(600, GREETING), Reply(1500, "Goodbye!", end_call=True)), speed=10
        ),
        caller=CallerScript(
            segments=(SpeakWhenHeard(tone=1, after_ms=900, speech_ms=500),),
            withhold_echoes_from_tone=2,
        ),
        expect=Expect(
            end_reason="agent_hangup",
            closed_by="server",
            ai_silent_speech=1,
            heard_in_full=(1, 2),
            goodbye_tone=2,
            flagged=("drain_before_final_mark",),
        ),
    ),
    Scenario(
        name="goodbye_interrupted",
        title="The caller interrupts the goodbye",
        story="The caller speaks over the goodbye: the hangup is cancelled and the call goes on.",
        realtime=RealtimeScript(
            replies=(
                Reply(600, GREETING),
                Reply(3000, "Goodbye then!", end_call=True),
                Reply(700, "Of course, go ahead."),
            ),
            speed=10,
        ),
        caller=CallerScript(
            segments=(
                SpeakWhenHeard(tone=1, after_ms=900, speech_ms=500),
                SpeakWhenHeard(tone=2, after_ms=800, speech_ms=700),
                Silence(2200),
            ),
            hangup="stop",
        ),
        expect=Expect(
            end_reason="caller_hangup",
            closed_by="caller",
            barge_ins=1,
            interrupted_tone=2,
            model_still_generating=False,
            ai_silent_speech=1,
            heard_in_full=(1, 3),
            hangup_cancelled=True,
        ),
    ),
    Scenario(
        name="model_drops",
        title="The Realtime connection drops mid-call",
        story=(
            "The model's socket dies without a close frame right after the greeting: a new "
            "session takes over, told the conversation so far, and answers the caller."
        ),
        realtime=RealtimeScript(replies=(Reply(600, GREETING),), faults=(Disconnect(1),)),
        replacements=(RealtimeScript(response_offset=1),),
        caller=CallerScript(
            segments=(SpeakWhenHeard(tone=1, after_ms=1200, speech_ms=500), Silence(2200)),
            hangup="stop",
        ),
        expect=Expect(
            end_reason="caller_hangup",
            closed_by="caller",
            ai_silent_speech=1,
            heard_in_full=(1, 2),
            model_recoveries=1,
        ),
    ),
    Scenario(
        name="model_goes_quiet",
        title="The model goes quiet",
        story=(
            "After the greeting the session stays connected but sends nothing: the caller's "
            "question gets no answer. A probe goes unanswered, a new session takes over with "
            "the conversation and the caller's words replayed, and answers."
        ),
        realtime=RealtimeScript(replies=(Reply(600, GREETING),), faults=(GoSilent(1),)),
        replacements=(RealtimeScript(response_offset=1),),
        caller=CallerScript(
            segments=(SpeakWhenHeard(tone=1, after_ms=800, speech_ms=600), Silence(12500)),
            hangup="stop",
        ),
        expect=Expect(
            end_reason="caller_hangup",
            closed_by="caller",
            ai_silent_speech=1,
            heard_in_full=(1, 2),
            model_recoveries=1,
        ),
    ),
    Scenario(
        name="model_gone_for_good",
        title="The model goes quiet and cannot be replaced",
        story=(
            "The session goes quiet and the service refuses every new one: the caller is "
            "told, and the call ends as model_unresponsive instead of in silence."
        ),
        realtime=RealtimeScript(replies=(Reply(600, GREETING),), faults=(GoSilent(1),)),
        replacements=(
            RealtimeScript(refuse_connection=True),
            RealtimeScript(refuse_connection=True),
        ),
        caller=CallerScript(segments=(SpeakWhenHeard(tone=1, after_ms=800, speech_ms=600),)),
        expect=Expect(
            end_reason="model_unresponsive",
            closed_by="server",
            heard_in_full=(1,),
            caller_told=True,
        ),
    ),
    Scenario(
        name="caller_vanishes",
        title="The caller vanishes without a stop",
        story="The caller's network drops mid-answer: the call ends and nothing recorded is lost.",
        realtime=RealtimeScript(replies=(Reply(3000, GREETING),)),
        caller=CallerScript(segments=(Silence(1200),), hangup="drop"),
        expect=Expect(end_reason="caller_disconnected", closed_by="caller"),
    ),
    Scenario(
        name="tool_order_status",
        title="A tool: the AI looks the caller's order up",
        story=(
            "The shop's customer asks about their order: the AI says it will check, calls "
            "the host's order_status tool (the ORM, on a tool thread) and answers with what "
            "it returned."
        ),
        realtime=RealtimeScript(
            replies=(
                Reply(1200, SHOP_GREETING),
                Reply(
                    900,
                    "Let me check that order.",
                    tool_calls=(ToolCall("order_status", {"order_number": DEMO_ORDER}),),
                ),
                Reply(1500, "Order 1042, a blue teapot, has shipped."),
            )
        ),
        caller=CallerScript(segments=(ASK, Silence(3800)), hangup="stop"),
        expect=Expect(
            end_reason="caller_hangup",
            closed_by="caller",
            ai_silent_speech=1,
            heard_in_full=(1, 2, 3),
            agent="orders",
            tools=(("order_status", "ok"),),
        ),
        from_number=DEMO_CUSTOMER,
    ),
    Scenario(
        name="tool_slow_courier",
        title="A slow tool: a holding line instead of silence",
        story=(
            "The courier's API takes 2.5 s to answer delivery_estimate: once the caller has "
            "heard 0.7 s of silence the AI says it is still checking, so the caller is "
            "never left wondering; then the answer comes."
        ),
        realtime=RealtimeScript(
            replies=(
                Reply(1200, SHOP_GREETING),
                Reply(
                    700,
                    "Let me ask the courier.",
                    tool_calls=(ToolCall("delivery_estimate", {"postcode": "SW1A 1AA"}),),
                ),
                # The holding line, after the live service's time to first audio.
                Reply(700, "Still checking, one moment.", latency_ms=800),
                Reply(1500, "The courier comes tomorrow between nine and twelve."),
            )
        ),
        caller=CallerScript(segments=(ASK, Silence(5500)), hangup="stop"),
        expect=Expect(
            end_reason="caller_hangup",
            closed_by="caller",
            ai_silent_speech=1,
            heard_in_full=(1, 2, 3, 4),
            agent="orders",
            tools=(("delivery_estimate", "ok"),),
            holding_lines=1,
        ),
        from_number=DEMO_CUSTOMER,
    ),
    Scenario(
        name="transfer_billing",
        title="A transfer: the handoff heard in full, then Twilio dials billing",
        story=(
            "The caller wants billing: the AI says it is putting them through and calls "
            "transfer_call; the handoff line plays to its end, its final mark comes back, "
            "and the stream closes with <Dial> to the billing desk."
        ),
        realtime=RealtimeScript(
            replies=(
                Reply(1200, SHOP_GREETING),
                Reply(
                    1500,
                    "I am putting you through to billing now.",
                    tool_calls=(ToolCall("transfer_call", {"target": "billing"}),),
                ),
            )
        ),
        caller=CallerScript(segments=(ASK,)),
        expect=Expect(
            end_reason="transferred",
            closed_by="server",
            ai_silent_speech=1,
            heard_in_full=(1, 2),
            agent="orders",
            transferred_to="billing",
        ),
        from_number=DEMO_CUSTOMER,
    ),
    Scenario(
        name="transfer_cancelled",
        title="The caller interrupts the handoff: no transfer",
        story=(
            "The caller speaks over 'putting you through': the transfer is cancelled as a "
            "goodbye would be, the model is told it did not happen, and the call goes on."
        ),
        realtime=RealtimeScript(
            replies=(
                Reply(1200, SHOP_GREETING),
                Reply(
                    3000,
                    "Let me put you through to billing, one moment please.",
                    tool_calls=(ToolCall("transfer_call", {"target": "billing"}),),
                ),
                Reply(700, "Of course, what else can I do?"),
            )
        ),
        caller=CallerScript(
            segments=(ASK, SpeakWhenHeard(tone=2, after_ms=1000, speech_ms=700), Silence(2500)),
            hangup="stop",
        ),
        expect=Expect(
            end_reason="caller_hangup",
            closed_by="caller",
            barge_ins=1,
            interrupted_tone=2,
            model_still_generating=False,
            ai_silent_speech=1,
            heard_in_full=(1, 3),
            hangup_cancelled=True,
            agent="orders",
        ),
        from_number=DEMO_CUSTOMER,
    ),
)

# The caller's sounds while the AI speaks (`callcore.turns`).
SCENARIOS += (
    Scenario(
        name="backchannel",
        title="Uh-huh is not an interruption",
        story=(
            "The caller says 'uh-huh' while the AI answers: the answer goes on (paused for "
            "a moment at most, and resumed where the caller stopped hearing it), the "
            "'uh-huh' is never answered and leaves the model's memory."
        ),
        realtime=RealtimeScript(replies=(Reply(600, GREETING), Reply(5000, HOURS))),
        caller=CallerScript(
            segments=(
                QUESTION,
                SpeakWhenHeard(tone=2, after_ms=1500, speech_ms=350, text="Uh-huh."),
                Silence(4500),
            ),
            hangup="stop",
        ),
        expect=Expect(
            end_reason="caller_hangup",
            closed_by="caller",
            ai_silent_speech=1,
            verdicts=("backchannel",),
            heard_whole=2,
        ),
        link=PHONE_LINE,
    ),
    Scenario(
        name="cough_and_line_noise",
        title="A cough and line noise are not interruptions",
        story=(
            "A cough (too short for the service to call it speech) and 300 ms of line "
            "noise (speech to the service, no words) during the answer: it goes on."
        ),
        realtime=RealtimeScript(replies=(Reply(600, GREETING), Reply(5000, HOURS))),
        caller=CallerScript(
            segments=(
                QUESTION,
                SpeakWhenHeard(tone=2, after_ms=1200, speech_ms=150, sound="cough"),
                SpeakWhenHeard(tone=2, after_ms=2600, speech_ms=300, sound="noise"),
                Silence(3500),
            ),
            hangup="stop",
        ),
        expect=Expect(
            end_reason="caller_hangup",
            closed_by="caller",
            ai_silent_speech=1,
            verdicts=("noise", "noise"),
            heard_whole=2,
        ),
        link=PHONE_LINE,
    ),
    Scenario(
        name="speakerphone",
        title="The AI's own voice, leaking back through a speakerphone",
        story=(
            "What the caller hears leaks back into their microphone 40 ms late, loud "
            "enough for the service to hear speech: the bridge hears its own voice in it "
            "(echo), the greeting's and the answer's; the caller's question, which the "
            "service hears as the greeting's echo going on, is answered all the same, and "
            "the 10 s answer plays whole, never interrupted, never answered."
        ),
        realtime=RealtimeScript(replies=(Reply(600, GREETING), Reply(10_000, HOURS))),
        caller=CallerScript(
            segments=(QUESTION, Silence(11_500)),
            hangup="stop",
            leak=Leak(delay_ms=40, gain=0.35),
        ),
        expect=Expect(
            end_reason="caller_hangup",
            closed_by="caller",
            verdicts=("echo", "echo"),
            heard_whole=2,
        ),
        link=PHONE_LINE,
    ),
    Scenario(
        name="real_interruption",
        title="A real interruption stops the AI at once",
        story=(
            "'Wait, stop, I need to change my order': the answer is paused within 450 ms "
            "of the caller's first sound, judged an interruption by its length, truncated "
            "to what was heard, and the caller is answered."
        ),
        realtime=RealtimeScript(
            replies=(
                Reply(600, GREETING),
                Reply(5000, HOURS),
                Reply(1000, "Of course, what would you like to change?"),
            )
        ),
        caller=CallerScript(
            segments=(
                QUESTION,
                SpeakWhenHeard(
                    tone=2,
                    after_ms=1500,
                    speech_ms=1400,
                    text="Wait, stop, I need to change my order.",
                ),
                Silence(2500),
            ),
            hangup="stop",
        ),
        expect=Expect(
            end_reason="caller_hangup",
            closed_by="caller",
            barge_ins=1,
            interrupted_tone=2,
            model_still_generating=False,
            ai_silent_speech=1,
            heard_in_full=(1, 3),
            verdicts=("interruption",),
            stopped_within_ms=450,
        ),
        link=PHONE_LINE,
    ),
)

BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}
DEMO = (
    "barge_in_tail",
    "barge_in_generating",
    "speech_after_playout",
    "goodbye_drain",
    "goodbye_final_mark_lost",
    "tool_order_status",
    "tool_slow_courier",
    "transfer_billing",
    "backchannel",
    "speakerphone",
    "real_interruption",
)
