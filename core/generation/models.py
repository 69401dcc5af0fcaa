"""Value objects of one generation: its parameters, the turns parsed from the reply, the result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from core.llm.types import LLMResult, Usage

__all__ = ["Conversation", "GenerationParams", "GenerationResult", "Role", "Turn"]

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class GenerationParams:
    """What the analyst asks for. `turns` counts messages (user and assistant), see prompts.validate_params.

    `system_prompt` / `user_template` override the named template's text (an edited template);
    None means the template's text. `template_version` pins the version (None: the latest);
    `variables` holds the values of the template's custom variables (a missing one takes its
    first suggestion); `edge_case` names one of the template's edge cases, or None.
    """

    template: str
    persona: str
    emotion: str
    topic: str
    turns: int
    model: str | None = None
    system_prompt: str | None = None
    user_template: str | None = None
    template_version: int | None = None
    variables: dict[str, str] | None = None
    edge_case: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in _OMITTED_WHEN_NONE:
            if data[key] is None:
                del data[key]
        return data


# the fields a template version brought (issue 14): left out of stored params when unset
_OMITTED_WHEN_NONE = ("template_version", "variables", "edge_case")


@dataclass(frozen=True)
class Turn:
    role: Role
    content: str


@dataclass(frozen=True)
class Conversation:
    """A parsed conversation; `to_messages()` is one line of a fine-tuning JSONL file."""

    system_prompt: str
    turns: list[Turn] = field(default_factory=list)

    def to_messages(self) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": self.system_prompt}]
        messages.extend({"role": t.role, "content": t.content} for t in self.turns)
        return messages

    def to_dict(self) -> dict[str, Any]:
        return {"system_prompt": self.system_prompt, "turns": [asdict(t) for t in self.turns]}


@dataclass(frozen=True)
class GenerationResult:
    """One successful generation: the conversation, the last call's LLMResult and totals over all attempts.

    `usage` and `cost_usd` add up every call made for this conversation, including replies
    that were rejected as malformed; `invalid_attempts` counts those rejected replies.
    """

    conversation: Conversation
    llm: LLMResult
    params: GenerationParams
    raw_text: str
    usage: Usage
    cost_usd: float
    invalid_attempts: int = 0
    mode: str = "online"  # how it reached the model: online | message_batches (its cost is at that mode's price)

    @property
    def calls(self) -> int:
        return self.invalid_attempts + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": self.params.to_dict(),
            "conversation": self.conversation.to_dict(),
            "messages": self.conversation.to_messages(),
            "model": self.llm.model,
            "request_id": self.llm.request_id,
            "stop_reason": self.llm.stop_reason,
            "usage": asdict(self.usage),
            "cost_usd": self.cost_usd,
            "mode": self.mode,
            "attempts": self.llm.attempts,
            "invalid_attempts": self.invalid_attempts,
        }
