"""The sandbox's words: a plausible conversation composed from the request's brief.

A generation request carries `Persona:`, `Emotion:`, `Topic:` and `Turns:` lines in its
last user message. The answer is `Turns` blocks starting `User:` / `Assistant:`, separated
by blank lines, composed from sentence banks chosen by the topic's words and the emotion.
Choices come from a hash of (seed, request content), so the same request gives the same
text on any run and in any process, while another topic, persona or emotion reads differently.
A request with a `Judge rubric: a, b, ...` line gets a judge's JSON answer (a reason and a score per
criterion). A request without a brief gets a short plain reply. A trailing assistant message is prefill:
the answer is only the continuation, and prefill + answer together form the whole text.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Brief",
    "Reply",
    "break_conversation",
    "compose_reply",
    "estimate_tokens",
    "message_text",
    "parse_brief",
    "request_input_tokens",
]

DEFAULT_PERSONA = "a busy professional"
DEFAULT_EMOTION = "curious"
DEFAULT_TOPIC = "getting started with a new tool"
DEFAULT_TURNS = 6
MIN_TURNS, MAX_TURNS = 2, 40
CHARS_PER_TOKEN = 4
_MESSAGE_OVERHEAD_TOKENS = 3  # role and framing, as the real tokenizer adds a few per message

_BRIEF_LINE = re.compile(r"^[ \t]*(?:[-*][ \t]*)?(persona|emotion|topic|turns)[ \t]*:[ \t]*(.*?)[ \t]*$",
                         re.IGNORECASE | re.MULTILINE)
_MARKER = re.compile(r"^(User|Assistant):", re.MULTILINE)


def estimate_tokens(text: str) -> int:
    """About four characters per token, as the usual rule of thumb for English."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def message_text(content: Any) -> str:
    """The text of a message's content: a string, or the text blocks of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"]
        return "".join(p for p in parts if isinstance(p, str))
    return ""


def request_input_tokens(system: Any, messages: Sequence[dict[str, Any]]) -> int:
    """Input tokens of a request: system and every message, plus a little framing per message."""
    total = estimate_tokens(message_text(system)) if system else 0
    for message in messages:
        total += estimate_tokens(message_text(message.get("content"))) + _MESSAGE_OVERHEAD_TOKENS
    return max(1, total)


@dataclass(frozen=True)
class Brief:
    persona: str
    emotion: str
    topic: str
    turns: int


def parse_brief(text: str) -> Brief | None:
    """The Persona/Emotion/Topic/Turns lines of `text` (defaults for missing ones), or None if it has none."""
    found: dict[str, str] = {}
    for match in _BRIEF_LINE.finditer(text):
        key = match.group(1).lower()
        if key not in found and match.group(2):
            found[key] = match.group(2)
    if not found:
        return None
    turns = DEFAULT_TURNS
    digits = re.search(r"\d+", found.get("turns", ""))
    if digits:
        turns = min(MAX_TURNS, max(MIN_TURNS, int(digits.group())))
    return Brief(
        persona=_clean(found.get("persona", DEFAULT_PERSONA)),
        emotion=_clean(found.get("emotion", DEFAULT_EMOTION)),
        topic=_clean(found.get("topic", DEFAULT_TOPIC)),
        turns=turns,
    )


def _clean(value: str) -> str:
    return value.strip().strip("\"'").rstrip(".").strip() or "something"


# ---- sentence banks ----------------------------------------------------------------------

_TOPIC_FAMILIES: dict[str, tuple[str, ...]] = {
    "tech": ("wifi", "router", "laptop", "computer", "phone", "printer", "software", "app", "install",
             "update", "error", "crash", "password", "login", "network", "server", "code", "python", "bug",
             "email", "vpn", "bluetooth", "driver", "database", "browser", "screen", "battery", "backup"),
    "money": ("budget", "loan", "mortgage", "saving", "tax", "invest", "debt", "credit", "retire", "pension",
              "money", "finance", "bank", "spending", "salary", "rent", "stock", "insurance", "bill", "fund"),
    "learning": ("math", "algebra", "calculus", "homework", "exam", "test", "study", "essay", "learn",
                 "physics", "chemistry", "biology", "history", "grammar", "language", "course", "lesson",
                 "reading", "writing", "statistics", "school", "tutor", "thesis", "vocabulary"),
    "orders": ("order", "refund", "delivery", "shipping", "package", "subscription", "account", "billing",
               "return", "cancel", "warranty", "replacement", "charge", "invoice", "purchase", "parcel"),
    "health": ("sleep", "diet", "exercise", "workout", "stress", "running", "weight", "nutrition", "habit",
               "meditation", "back pain", "posture", "energy", "fitness", "injury", "recovery"),
    "travel": ("flight", "trip", "hotel", "visa", "passport", "travel", "luggage", "itinerary", "train",
               "vacation", "booking", "airport", "layover", "road trip"),
    "work": ("job", "career", "interview", "manager", "team", "promotion", "resume", "meeting", "deadline",
             "colleague", "project", "negotiat", "feedback", "remote work", "onboarding"),
}

_EMOTION_FAMILIES: dict[str, tuple[str, ...]] = {
    "frustrated": ("frustrat", "annoy", "angry", "irritat", "furious", "mad", "upset", "fed up", "impatient"),
    "anxious": ("anxi", "nervous", "worr", "stress", "scared", "afraid", "overwhelm", "panic", "tense"),
    "sad": ("sad", "down", "disappoint", "discourag", "lonely", "hopeless", "tired", "exhaust"),
    "excited": ("excit", "happy", "thrill", "eager", "enthusias", "optimis", "hopeful", "cheer", "joy",
                "grateful", "proud"),
    "confused": ("confus", "lost", "unsure", "uncertain", "puzzl", "baffl"),
    "skeptical": ("skeptic", "sceptic", "doubt", "suspicious", "cynic", "wary"),
    "curious": ("curious", "interest", "wonder", "intrigu", "calm", "neutral", "relaxed"),
}

_OPENERS = {
    "frustrated": ["I'm honestly fed up with {topic}.", "This is the third time I'm dealing with {topic} and I'm losing patience.",
                   "Okay, I'm really frustrated with {topic} right now.", "I've had it with {topic}."],
    "anxious": ["I'm a bit nervous about {topic}.", "I keep worrying about {topic} and it's keeping me up at night.",
                "Sorry if this is a silly question, but {topic} is stressing me out.",
                "I feel overwhelmed by {topic} and don't know where to start."],
    "sad": ["I'm feeling pretty down about {topic}.", "Honestly, {topic} has been discouraging lately.",
            "I was hoping {topic} would go better than it has."],
    "excited": ["I'm really excited to finally sort out {topic}!", "Good news first: I'm ready to tackle {topic}!",
                "I've been looking forward to getting help with {topic}."],
    "confused": ["I'm confused about {topic}.", "I've read a lot about {topic} and I'm more lost than before.",
                 "Can you help me make sense of {topic}? I'm not following any of it."],
    "skeptical": ["I'm not convinced anyone can actually help with {topic}, but here goes.",
                  "Everyone keeps telling me {topic} is simple. I doubt it.",
                  "I've heard a lot of advice about {topic} and most of it didn't hold up."],
    "curious": ["I've been wondering about {topic}.", "Quick question about {topic}.",
                "I'd like to understand {topic} a little better."],
}

_PERSONA_LINES = [
    "As {persona}, I don't have a lot of spare time for this.",
    "For context, I'm {persona}.",
    "I should mention I'm {persona}, so keep that in mind.",
    "Being {persona}, I need something practical.",
    "I'm {persona}, if that changes anything.",
]

_ASKS = {
    "tech": ["What should I check first?", "Is there a quick fix, or do I need to reinstall something?",
             "How do I figure out what's actually causing it?"],
    "money": ["Where do I even begin?", "What would you do in my position?", "Is there a simple rule I can follow?"],
    "learning": ["Can you explain it step by step?", "How should I approach studying it?",
                 "What's the idea I'm missing?"],
    "orders": ["What are my options here?", "How do I get this resolved quickly?", "What do you need from me?"],
    "health": ["What's a realistic first step?", "How do I make it stick this time?", "What should I change first?"],
    "travel": ["What should I sort out first?", "Is there anything I'm likely to forget?", "How do I avoid surprises?"],
    "work": ["How should I handle it?", "What would you say in my place?", "How do I prepare?"],
    "general": ["Where should I start?", "What would you suggest?", "Can you walk me through it?"],
}

_EMPATHY = {
    "frustrated": ["I'm sorry this keeps happening; that would wear anyone down.",
                   "That sounds genuinely annoying, and it's fair to be fed up.",
                   "I understand the frustration, so let's get this fixed properly."],
    "anxious": ["That's a completely reasonable thing to worry about, and we can take it one step at a time.",
                "It's not a silly question at all, and you're not alone in finding {topic} stressful.",
                "Let's slow it down; {topic} is more manageable than it feels right now."],
    "sad": ["I'm sorry it's been discouraging; it makes sense to feel that way.",
            "That sounds tough, and it's good that you're reaching out.",
            "Setbacks with {topic} are common, and they don't mean you're doing it wrong."],
    "excited": ["Love the energy, let's put it to good use.", "Great, this is a good moment to get {topic} right.",
                "That's great to hear, and it's very doable."],
    "confused": ["No problem, {topic} trips a lot of people up.", "Let's untangle it together, starting simple.",
                 "That's understandable; most explanations of {topic} skip the basics."],
    "skeptical": ["Fair enough; I'll stick to things you can check for yourself.",
                  "A healthy bit of doubt is useful here, so let's keep it concrete.",
                  "I won't oversell it; here's what tends to work in practice."],
    "curious": ["Happy to help.", "Good question.", "Sure, here's the short version."],
}

_ADVICE = {
    "tech": ["Start by restarting the device and noting the exact error message, because it usually names the culprit.",
             "Check whether the problem with {topic} happens on another device too; that tells us if it's local.",
             "Make sure everything is updated, since a lot of issues like this are fixed in recent releases.",
             "Try disconnecting anything you added recently and see if {topic} still misbehaves.",
             "Look at the settings page for a reset option that keeps your data but clears the configuration.",
             "If it started after a change, undoing that one change is the fastest test.",
             "Keep a backup before you try anything drastic, just in case."],
    "money": ["Begin by writing down what comes in and what goes out for a month; the numbers usually surprise people.",
              "A small emergency fund comes first, even a few hundred, so one surprise doesn't derail {topic}.",
              "Pay down the most expensive debt first while making minimum payments on the rest.",
              "Automate the part of {topic} you tend to forget, so it happens on payday without willpower.",
              "Compare the fees carefully; small percentages add up over years.",
              "Set one concrete target with a date, because vague goals are easy to postpone.",
              "It's worth a short conversation with your bank, since they often have options they don't advertise."],
    "learning": ["Let's start with the core idea of {topic} before any formulas or rules.",
                 "Try explaining {topic} out loud in your own words; the gaps show up quickly.",
                 "Work through one small example by hand, then change a single detail and redo it.",
                 "Short daily sessions beat one long cram, especially for something like {topic}.",
                 "Write down the two or three terms that keep confusing you and define them first.",
                 "Practice questions from past material will show you what actually gets asked.",
                 "When you get stuck, go back one step rather than rereading the whole chapter."],
    "orders": ["I can help with that; first, please share the order number and the email on the account.",
               "I've checked the usual causes for {topic}, and there are two ways we can resolve it.",
               "You can choose a refund to the original payment method or a replacement shipped at no cost.",
               "The refund normally appears within three to five business days after it's processed.",
               "I'll add a note to the account so you don't have to explain {topic} again.",
               "If the item was damaged, a photo helps, but it isn't required to start the claim.",
               "I can also set up a reminder so you're notified as soon as the status changes."],
    "health": ["Pick one small change for {topic} and keep it for two weeks before adding another.",
               "Track it lightly, a note a day, so you can see patterns rather than guess.",
               "Consistency matters more than intensity, especially at the start.",
               "Tie the new habit to something you already do every day.",
               "If anything hurts or worries you, it's worth checking with a doctor first.",
               "Sleep and stress affect {topic} more than people expect, so keep an eye on both.",
               "Plan for the bad days too; a smaller version of the habit still counts."],
    "travel": ["Check the entry requirements and document expiry dates first; they cause the most trouble.",
               "Keep digital and paper copies of your bookings for {topic}.",
               "Leave generous buffers between connections, especially with checked luggage.",
               "Look up the cancellation terms now, while you still have options.",
               "Pack the essentials in your carry-on in case your bag takes a different route.",
               "Sign up for alerts from the airline or operator so changes reach you quickly.",
               "Travel insurance is worth comparing if {topic} involves non-refundable bookings."],
    "work": ["Write down what outcome you want from {topic} before you plan what to say.",
             "Bring specific examples; they carry more weight than general impressions.",
             "Ask a question early in the conversation, it makes it feel less like a confrontation.",
             "Practice the first two sentences out loud; the rest usually follows.",
             "Keep notes afterwards so you can follow up on what was agreed.",
             "It helps to understand what the other person is under pressure to deliver.",
             "Give yourself a deadline for deciding, so {topic} doesn't linger for months."],
    "general": ["Let's break {topic} into a few small steps so it's less daunting.",
                "Start with the part you can do today, even if it's small.",
                "Write down what you already know about {topic}; it's usually more than you think.",
                "Look for one reliable source and ignore the rest for now.",
                "Check in with yourself after a week and adjust what isn't working.",
                "Ask someone who has done it before; a ten-minute chat saves hours.",
                "Keep the plan simple enough that you'll actually follow it."],
}

_QUESTIONS_BACK = ["Does that match what you're seeing?", "Would that work for you?", "How does that sound?",
                   "Do you want me to go into more detail on any of that?", "What have you tried so far?",
                   "Is there a deadline I should know about?"]

_FOLLOW_PREFIX = {
    "frustrated": ["Fine, but", "Okay, I tried that already, and", "That's what the last person said, and",
                   "Alright,"],
    "anxious": ["Okay, that helps a little, but", "Sorry, one more thing:", "I think I understand, but",
                "Thanks, that's reassuring. Still,"],
    "sad": ["I guess that makes sense, but", "Okay.", "Thanks, I needed to hear that. But"],
    "excited": ["Perfect!", "Oh, that's helpful!", "Great, and"],
    "confused": ["Wait, I'm still not sure I follow.", "Okay, I think I get the first part, but",
                 "Sorry, can you clarify something?"],
    "skeptical": ["Hmm, maybe.", "I'm not sure that's true in my case.", "Okay, but"],
    "curious": ["Interesting.", "That makes sense.", "Got it."],
}

_FOLLOW_UPS = {
    "tech": ["what if the error comes back after a restart?", "do I need to worry about losing my files?",
             "how do I know if it's the hardware or the software?", "should I call support at that point?",
             "is there a log somewhere I could look at?"],
    "money": ["what if an unexpected bill shows up halfway through the month?",
              "how much should I keep aside each month?", "is it better to save or pay off debt first?",
              "how do I stay motivated when progress is slow?", "what about taxes on that?"],
    "learning": ["how do I know when I actually understand it?", "what if I freeze during the exam?",
                 "can you give me a practice example?", "how long should I spend on it each day?",
                 "what's the most common mistake people make?"],
    "orders": ["how long will that take exactly?", "will I get a confirmation email?",
               "what if it happens again with the replacement?", "do I need to send the item back first?",
               "can I talk to someone if it isn't resolved by then?"],
    "health": ["what if I miss a few days?", "how soon should I notice a difference?",
               "is it okay to do this every day?", "what should I do on really busy days?",
               "how do I know if it's working?"],
    "travel": ["what if my flight gets cancelled?", "how early should I get to the airport?",
               "do I need any special documents?", "what's the best way to handle money there?",
               "should I book everything in advance?"],
    "work": ["what if my manager says no?", "how do I bring it up without sounding defensive?",
             "should I put it in writing first?", "what if it affects my review?",
             "how do I follow up without being pushy?"],
    "general": ["what if that doesn't work?", "how long does it usually take?", "is there anything I should avoid?",
                "what's the next step after that?", "how will I know I'm on the right track?"],
}

_FOLLOW_ANSWERS = {
    "tech": ["If it comes back, note the time and what you were doing; that points to a pattern.",
             "Your files should be safe, but a quick backup first removes the worry.",
             "Running the built-in diagnostics will separate hardware faults from software ones.",
             "At that point, yes, contacting support with the error details will save time.",
             "Yes, the system log usually records the error with a timestamp, which is worth sending along."],
    "money": ["Keep a small buffer category in the budget for exactly that.",
              "A common starting point is ten percent, adjusted to what's realistic for you.",
              "Usually high-interest debt first, while keeping a small cushion saved.",
              "Track progress monthly rather than daily; the trend is what matters.",
              "That depends on the account type, so check whether it is tax-advantaged before moving money."],
    "learning": ["If you can solve a fresh problem without notes, you've got it.",
                 "Start the exam with a question you're confident about to settle your nerves.",
                 "Here's one to try: take the example we did and change the starting value.",
                 "Thirty focused minutes a day is plenty if you keep it up.",
                 "The most common mistake is memorising steps without knowing why they work."],
    "orders": ["It usually takes three to five business days, and you'll get an email at each step.",
               "Yes, a confirmation is sent as soon as the request is processed.",
               "If it happens again, reply to the confirmation email and it comes straight back to us.",
               "No need to send anything back first; we'll include a prepaid label if we need it.",
               "Of course; if it isn't resolved by then, reply here and I'll escalate it to a supervisor."],
    "health": ["Missing a few days is normal; just pick it up again without trying to make up for it.",
               "Most people notice something within two to three weeks.",
               "Yes, as long as it feels manageable and nothing hurts.",
               "On busy days, a five-minute version keeps the habit alive.",
               "If the week-to-week notes show even a small improvement, it is working."],
    "travel": ["If it's cancelled, the airline has to rebook you or refund you, so keep every receipt.",
               "Two hours for domestic and three for international is a safe rule.",
               "Check the official government site for the destination; it lists everything you need.",
               "A card with no foreign transaction fees plus a little local cash works well.",
               "Book the parts with limited availability early and keep the rest flexible."],
    "work": ["If the answer is no, ask what would need to change for it to be a yes.",
             "Frame it around the shared goal rather than what went wrong.",
             "A short written summary beforehand helps both of you prepare.",
             "A single conversation rarely decides a review, and raising it constructively tends to count in your favour.",
             "A polite check-in after a week is completely reasonable."],
    "general": ["Then we adjust; the first attempt mostly tells us what to try next.",
                "Usually a couple of weeks before it feels natural.",
                "Avoid changing too many things at once, or you won't know what helped.",
                "Once that's in place, the next step is to review how it went and refine it.",
                "If each week feels a little easier than the last, you're on the right track."],
}

# each follow-up question with the answer that fits it
_FOLLOW_PAIRS: dict[str, list[tuple[str, str]]] = {
    family: list(zip(_FOLLOW_UPS[family], _FOLLOW_ANSWERS[family], strict=True)) for family in _FOLLOW_UPS
}

_USER_CLOSERS = {
    "frustrated": ["Alright, that's more helpful than I expected. Thanks.", "Fine, I'll try that. Thanks for sticking with me."],
    "anxious": ["Thank you, I feel a lot calmer about it now.", "Okay, that makes it feel manageable. Thanks."],
    "sad": ["Thanks, that actually makes me feel a bit better.", "I appreciate it. I'll give it another go."],
    "excited": ["This is perfect, thank you so much!", "Awesome, I can't wait to get started!"],
    "confused": ["Okay, now it finally clicks. Thanks!", "That's much clearer, thank you."],
    "skeptical": ["Fair enough, I'll give it a shot.", "Okay, that's more concrete than I expected. Thanks."],
    "curious": ["Thanks, that's really useful.", "Great, that answers my question."],
}

_ASSISTANT_CLOSERS = [
    "You're welcome! Good luck with {topic}, and come back anytime if something new comes up.",
    "Glad I could help. Take it one step at a time, and feel free to check in again.",
    "Anytime. You've got a clear plan now, and that's most of the work.",
    "Happy to help. If anything about {topic} changes, just let me know.",
]

_PLAIN_REPLIES = [
    "Here is a short answer from the offline sandbox model.",
    "This reply comes from the offline sandbox, so it is brief and generic.",
    "The sandbox model read your message and is answering briefly.",
    "Thanks for the message; the offline sandbox keeps its answers short.",
]

_CONTINUE_ENDINGS = [" and that's the situation so far.", ", which is where things stand.", "."]


# ---- composition ---------------------------------------------------------------------------

def _family(text: str, families: dict[str, tuple[str, ...]], default: str) -> str:
    lowered = text.lower()
    best, best_hits = default, 0
    for name, words in families.items():
        hits = sum(1 for w in words if w in lowered)
        if hits > best_hits:
            best, best_hits = name, hits
    return best


def _persona_phrase(persona: str) -> str:
    """`persona` as it reads after "I'm": with an article, unless it already has one or is a name."""
    words = persona.split()
    first = words[0] if words else "someone"
    if first.lower() in ("a", "an", "the", "my", "someone", "somebody"):
        return first.lower() + persona[len(first):]
    looks_like_name = first[:1].isupper() and first[1:].islower() and (
        first.endswith(",") or len(words) == 1 or (len(words) > 1 and words[1].startswith(("(", "-")))
    )
    if looks_like_name:
        return persona
    if not first.isupper():  # keep acronyms like "IT manager"
        persona = persona[:1].lower() + persona[1:]
    return ("an " if persona[:1].lower() in "aeiou" else "a ") + persona


class _Chooser:
    """Seeded choices that avoid repeating a sentence within one conversation."""

    def __init__(self, rng: random.Random, topic: str) -> None:
        self.rng = rng
        self.topic = topic
        self.used: set[str] = set()

    def pick(self, bank: Sequence[str]) -> str:
        fresh = [s for s in bank if s not in self.used] or list(bank)
        choice = fresh[self.rng.randrange(len(fresh))]
        self.used.add(choice)
        return choice.replace("{topic}", self.topic)

    def pick_pair(self, bank: Sequence[tuple[str, str]]) -> tuple[str, str]:
        fresh = [pair for pair in bank if pair[0] not in self.used] or list(bank)
        question, answer = fresh[self.rng.randrange(len(fresh))]
        self.used.add(question)
        return question.replace("{topic}", self.topic), answer.replace("{topic}", self.topic)


def compose_turns(brief: Brief, key: str, context: str = "") -> list[tuple[str, str]]:
    """`brief.turns` (role, text) pairs, alternating from the user, chosen by `key`.

    The topic's words pick the sentence bank; a topic too vague for that (e.g. "my order"
    is clear, "it" is not) falls back to the words of `context`, the rest of the prompt.
    """
    rng = random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))
    topic_family = _family(brief.topic, _TOPIC_FAMILIES, "")
    if not topic_family:
        topic_family = _family(context, _TOPIC_FAMILIES, "general")
    mood = _family(brief.emotion, _EMOTION_FAMILIES, "curious")
    choose = _Chooser(rng, brief.topic)
    persona = _persona_phrase(brief.persona)
    turns: list[tuple[str, str]] = []
    reminded = False
    pending_answer = choose.pick(_FOLLOW_ANSWERS["general"])  # replaced by the answer to each follow-up
    n = brief.turns
    for i in range(n):
        role = "User" if i % 2 == 0 else "Assistant"
        closing = i >= 2 and i >= n - 2  # the last exchange wraps up, once there was a middle
        if role == "User":
            if i == 0:
                parts = [choose.pick(_OPENERS[mood]), choose.pick(_PERSONA_LINES).replace("{persona}", persona),
                         choose.pick(_ASKS[topic_family])]
            elif closing and i == n - 2:
                parts = [choose.pick(_USER_CLOSERS[mood])]
            else:
                prefix = choose.pick(_FOLLOW_PREFIX[mood])
                # long conversations draw on the general bank too, so they repeat themselves less
                pairs = _FOLLOW_PAIRS[topic_family] + (_FOLLOW_PAIRS["general"] if i > 6 else [])
                question, pending_answer = choose.pick_pair(pairs)
                if prefix.endswith((".", "!", "?", ":")):
                    question = question[0].upper() + question[1:]
                parts = [prefix, question]
                if rng.random() < 0.2 and not reminded:
                    parts.append(f"Remember I'm {persona}.")
                    reminded = True
        else:
            if i == 1:
                parts = [choose.pick(_EMPATHY[mood]), choose.pick(_ADVICE[topic_family]),
                         choose.pick(_ADVICE[topic_family])]
                if rng.random() < 0.6:
                    parts.append(choose.pick(_QUESTIONS_BACK))
            elif closing and i == n - 1:
                parts = [choose.pick(_ASSISTANT_CLOSERS)]
            else:
                parts = [pending_answer, choose.pick(_ADVICE[topic_family])]
                if rng.random() < 0.3:
                    parts.append(choose.pick(_QUESTIONS_BACK))
        turns.append((role, _sentence_case(" ".join(parts))))
    return turns


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:]


def render(turns: Sequence[tuple[str, str]]) -> str:
    return "\n\n".join(f"{role}: {text}" for role, text in turns)


@dataclass(frozen=True)
class Reply:
    """What the model says: `text` continues `prefill` (empty without one)."""

    text: str
    brief: Brief | None
    prefill: str


def request_key(seed: int, system: Any, messages: Sequence[dict[str, Any]]) -> str:
    """A stable key of the request content (without its prefill), so a resumed draft gets the same text."""
    payload = [seed, message_text(system)] + [[m.get("role"), message_text(m.get("content"))] for m in messages]
    return json.dumps(payload, ensure_ascii=False, sort_keys=True)


def compose_reply(seed: int, system: Any, messages: Sequence[dict[str, Any]]) -> Reply:
    """The reply to a validated request (the last message is from the user, or is assistant prefill)."""
    prefill = ""
    asked = list(messages)
    if asked and asked[-1].get("role") == "assistant":
        prefill = message_text(asked[-1].get("content"))
        asked = asked[:-1]
    last_user = next((message_text(m.get("content")) for m in reversed(asked) if m.get("role") == "user"), "")
    brief = parse_brief(last_user)
    if brief is None and system:
        brief = parse_brief(message_text(system))
    key = request_key(seed, system, asked)
    rubric = _JUDGE_RUBRIC.search(last_user)
    if rubric is not None:
        return Reply(_judge_reply(rubric.group(1), key), None, prefill)
    if brief is None:
        full = _plain_reply(last_user, key)
        return Reply(_continue_plain(full, prefill, key), None, prefill)
    turns = compose_turns(brief, key, context=f"{message_text(system)}\n{last_user}")
    return Reply(_continue_conversation(turns, prefill), brief, prefill)


_JUDGE_RUBRIC = re.compile(r"^Judge rubric:[ \t]*(.+)$", re.MULTILINE)
_JUDGE_REASONS = ("Consistent with the brief throughout.", "Mostly on point, one generic stretch.",
                  "Reads naturally; the user sounds like a person.", "Helpful and specific, no filler.",
                  "Clear from start to end.", "Nothing unsafe or off-limits.")


def _judge_reply(criteria: str, key: str) -> str:
    """A judge's JSON answer: a reason and a 3-5 score for each named criterion, chosen by `key`."""
    rng = random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))
    names = [c.strip() for c in criteria.split(",") if c.strip()]
    return json.dumps({name: {"reason": _JUDGE_REASONS[rng.randrange(len(_JUDGE_REASONS))],
                              "score": rng.randint(3, 5)} for name in names})


def _plain_reply(user_text: str, key: str) -> str:
    rng = random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))
    words = user_text.split()
    gist = " ".join(words[:12]) + ("…" if len(words) > 12 else "")
    opener = _PLAIN_REPLIES[rng.randrange(len(_PLAIN_REPLIES))]
    if not gist:
        return f"Hello! {opener}"
    return f"{opener} You wrote: \u201c{gist}\u201d. A real model would answer that properly."


def _continue_plain(full: str, prefill: str, key: str) -> str:
    if not prefill:
        return full
    if full.startswith(prefill):
        return full[len(prefill):]
    rng = random.Random(key)
    ending = _CONTINUE_ENDINGS[rng.randrange(len(_CONTINUE_ENDINGS))]
    return ending if not prefill.rstrip().endswith((".", "!", "?")) else " That is all the sandbox has to add."


def _continue_conversation(turns: list[tuple[str, str]], prefill: str) -> str:
    """The text that, appended to `prefill`, completes a conversation of len(turns) blocks."""
    full = render(turns)
    if full.startswith(prefill):
        return full[len(prefill):]
    if not prefill.strip():
        return full
    done = len(_MARKER.findall(prefill))
    out = ""
    tail = prefill.rstrip(" \t")
    if done:
        last_line = tail.rsplit("\n", 1)[-1]
        if _MARKER.fullmatch(last_line.strip()):
            # prefill stops right after a marker: give that block its text
            role_text = turns[done - 1][1] if done - 1 < len(turns) else "Thanks."
            out += ("" if prefill.endswith(" ") else " ") + role_text
        elif tail and not tail.endswith("\n") and not tail.endswith((".", "!", "?", "\u201d", '"')):
            out += _CONTINUE_ENDINGS[done % len(_CONTINUE_ENDINGS)]
    elif tail and not tail.endswith("\n"):
        out += _CONTINUE_ENDINGS[0]
    rest = turns[done:] if done else turns
    if rest:
        current = prefill + out
        sep = "" if current.endswith("\n\n") else "\n" if current.endswith("\n") else "\n\n"
        out += sep + render(rest)
    return out


def break_conversation(text: str, prefill: str, draw: float) -> str:
    """`text` spoiled so it no longer parses as a conversation (for the invalid-conversation fault)."""
    if text.lstrip().startswith("{"):  # a judge's JSON answer: cut short, so it no longer parses
        return text[:len(text) // 2]
    if prefill:
        # appended blocks with the same role twice: wrong count and broken alternation
        return text + "\n\nAssistant: Let me add one more thing.\n\nAssistant: And one more."
    blocks = _MARKER.split(text)
    if draw < 0.25:
        # no role markers at all: prose paragraphs
        return _MARKER.sub("", text).replace("\n\n ", "\n\n").lstrip()
    if draw < 0.5 and len(blocks) > 3:
        # one message short
        return text.rsplit("\n\n", 1)[0]
    if draw < 0.75:
        return "Here is the conversation you asked for:\n\n" + text + "\n\nUser:"
    return text + "\n\nUser: One more question that was not asked for."
