"""`python -m core generate --template NAME [...] [--json]`: one conversation, with usage and cost.

Exit codes follow the CLI: 0 ok, 1 the generation failed (the user message on stderr),
2 a bad argument or value (the message names the field).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from core.cli.args import template_name, turns, variable_value
from core.config import get_settings
from core.generation import GenerationParams, GenerationResult, validate_params
from core.generation.service import agenerate_conversation
from core.generation.templates import get_template


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("generate", help="generate one conversation from a template and print it")
    p.add_argument("--template", required=True, type=template_name,
                   help="a template's name (python -m core templates list)")
    p.add_argument("--persona", help="who the user is (default: the template's first suggestion)")
    p.add_argument("--emotion", help="how the user feels (default: the template's first suggestion)")
    p.add_argument("--topic", help="what the conversation is about (default: the template's first suggestion)")
    p.add_argument("--turns", type=turns, help="number of messages, even (default: settings)")
    p.add_argument("--var", action="append", type=variable_value, default=[], metavar="NAME=VALUE",
                   help="a custom variable's value (repeat for each; default: its first suggestion)")
    p.add_argument("--edge-case", help="one of the template's edge cases (default: none)")
    p.add_argument("--model", help="model name (default: the template's, else the configured default model)")
    p.add_argument("--json", action="store_true", help="print JSON: conversation, usage, cost")
    p.set_defaults(func=_generate, store="log")


def _generate(args: argparse.Namespace) -> int:
    # ValidationError / AppError raised here reach core.__main__, which maps them to exit 2 / 1
    template = get_template(args.template)
    params = GenerationParams(
        template=template.name,
        persona=args.persona if args.persona is not None else template.default_persona,
        emotion=args.emotion if args.emotion is not None else template.default_emotion,
        topic=args.topic if args.topic is not None else template.default_topic,
        turns=template.turns_near(get_settings().generation_default_turns) if args.turns is None else args.turns,
        model=args.model, template_version=template.version, variables=dict(args.var) or None,
        edge_case=args.edge_case,
    )
    validate_params(params)
    return run_and_print(lambda client: run_generation(params, client), as_json=args.json)


def run_generation(params: GenerationParams, client: Any) -> GenerationResult:
    from core.llm.loops import run_sync

    return run_sync(agenerate_conversation(params, client=client, component="cli.generate"))


def run_and_print(generate: Callable[[Any], GenerationResult], *, as_json: bool) -> int:
    """Run `generate(client)` with the configured model client and print the conversation (or JSON)."""
    from core.llm.client import get_client, reset_client  # the SDK loads only when a model is called

    client = get_client()
    try:
        result = generate(client)
    finally:
        reset_client()  # stops an in-process sandbox before the interpreter exits
    if as_json:
        payload = result.to_dict()
        payload["provider"] = client.provider
        print(json.dumps(payload, ensure_ascii=False, indent=2))
        return 0
    if client.provider == "sandbox":
        print("(offline sandbox: this text is not from Claude)", file=sys.stderr)
    print(f"System: {result.conversation.system_prompt}\n")
    for turn in result.conversation.turns:
        print(f"{turn.role.capitalize()}: {turn.content}\n")
    u = result.usage
    print(f"-- {result.llm.model} via {client.provider}: {u.input_tokens} input + {u.output_tokens} output tokens, "
          f"${result.cost_usd:.6f}, {result.llm.attempts} attempt(s), {result.invalid_attempts} invalid repl(ies)")
    return 0
