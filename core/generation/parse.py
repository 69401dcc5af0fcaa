"""Parse a model reply in the `User:` / `Assistant:` block format into turns, or say plainly why not."""

from __future__ import annotations

import re

from core.errors import ErrorCode, GenerationError
from core.generation.models import Role, Turn
from core.redact import redact_text

__all__ = ["parse_conversation"]

_MARKER = re.compile(r"^(User|Assistant):[ \t]?(.*)$")
_ROLE: dict[str, Role] = {"User": "user", "Assistant": "assistant"}


def _invalid(reason: str, text: str) -> GenerationError:
    return GenerationError(
        f"The reply is not a valid conversation: {reason}", code=ErrorCode.INVALID_RESPONSE,
        context={"reason": reason, "reply_chars": len(text), "reply_start": text[:200]})


def parse_conversation(text: str, expected_turns: int) -> list[Turn]:
    """Split `text` into turns: roles alternate starting with the user, `expected_turns` of them, none empty.

    A block starts at the beginning of a line with ``User:`` or ``Assistant:``; the lines up
    to the next block belong to it (so a message may hold paragraphs). Raises
    GenerationError(code="invalid_response") with the reason otherwise. Each message is redacted
    (a credential-shaped string becomes [REDACTED]): what is stored, reviewed and exported never
    carries a secret the model wrote, and a dataset never teaches one.
    """
    if not text or not text.strip():
        raise _invalid("the reply is empty", text or "")
    turns: list[tuple[Role, list[str]]] = []
    for number, line in enumerate(text.strip().splitlines(), start=1):
        match = _MARKER.match(line.rstrip())
        if match:
            turns.append((_ROLE[match.group(1)], [match.group(2)]))
        elif turns:
            turns[-1][1].append(line)
        elif line.strip():
            raise _invalid(f"line {number} comes before the first \"User:\" message: {line.strip()[:80]!r}", text)
    result: list[Turn] = []
    for index, (role, lines) in enumerate(turns):
        expected_role: Role = "user" if index % 2 == 0 else "assistant"
        if role != expected_role:
            raise _invalid(f"message {index + 1} is from the {role} but should be from the {expected_role} "
                           "(roles must alternate, starting with the user)", text)
        content = "\n".join(lines).strip()
        if not content:
            raise _invalid(f"message {index + 1} ({role}) is empty", text)
        result.append(Turn(role=role, content=redact_text(content)))
    if len(result) != expected_turns:
        raise _invalid(f"it has {len(result)} messages but {expected_turns} were asked for", text)
    return result
