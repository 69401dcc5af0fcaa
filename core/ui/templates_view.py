"""The Templates page's pieces: the list with usage, the editor with every rule beside its field, the live
preview, "Try it", the token count, a diff of two versions, and YAML import / export.

The editor is plain text fields (one value a line; custom variables and edge cases one a line),
so what an analyst types is what is checked and saved; nothing invalid can be saved, and a
save is always a new version (the version the edit began from must still be the latest).
"""

from __future__ import annotations

import difflib
from typing import Any

import pandas as pd
import streamlit as st

from core.auth.users import names_of
from core.config import get_settings
from core.errors import AppError, ErrorCode, ValidationError
from core.generation import GenerationParams, build_prompt
from core.llm.pricing import model_choices
from core.store import get_engine
from core.templates import EdgeCase, Problem, Template, TemplateContent, problems
from core.templates import store as templates
from core.templates.model import STANDARD_VARIABLES
from core.templates.yaml_io import TemplateFileInvalid, dump, load
from core.ui.boundaries import section_key
from core.ui.safe import literal
from core.ui.toasts import success
from core.wording import counted

__all__ = ["diff", "editor", "listing", "preview", "selected", "transfer"]

_K = "templates"
_NEW = "__new__"
_DEFAULT_MODEL = "(the configured default)"


def _key(name: str) -> str:
    return section_key(_K, name)


def selected() -> str:
    """The slug being edited, or the new template's marker."""
    return str(st.session_state.get(_key("pick")) or _NEW)


def _select(slug: str) -> None:
    """Edit `slug` from the next run on (the picker's own value is set before the picker is drawn)."""
    st.session_state[_key("want")] = slug


def listing() -> list[Template]:
    """Every template's latest version with its usage; returns them (archived too when asked)."""
    engine = get_engine()
    archived = st.toggle("Show archived templates", key=_key("archived"))
    found = templates.list_templates(engine, include_archived=archived)
    used = templates.usage_counts(engine)
    authors = names_of(engine, (t.created_by for t in found))
    st.dataframe(pd.DataFrame([{
        "Name": t.name, "Title": t.title, "Version": t.version,
        "Saved by": "built-in" if t.created_by is None else authors.get(t.created_by, "someone"),
        "Variables": ", ".join(t.content.custom_variables) or "—",
        "Edge cases": len(t.content.edge_cases), "Batches": used.get(t.name, {}).get("batches", 0),
        "Conversations": used.get(t.name, {}).get("conversations", 0),
        "Archived": t.archived} for t in found]), hide_index=True)
    options = [_NEW, *(t.name for t in found)]
    wanted = st.session_state.pop(_key("want"), None)
    if wanted is not None or selected() not in options:
        st.session_state[_key("pick")] = wanted if wanted in options else _NEW
    titles = {t.name: f"{t.title} ({t.name}, v{t.version})" for t in found}
    st.selectbox("Edit", options, key=_key("pick"),
                 format_func=lambda n: "A new template" if n == _NEW else titles.get(n, n))
    return found


# ---- the editor ------------------------------------------------------------------------------------------


def _lines(text: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _custom(text: str, out: list[Problem]) -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for n, line in enumerate(_lines(text), start=1):
        name, sep, values = line.partition(":")
        if not sep or not name.strip():
            out.append(Problem("variables", f"Line {n}: write the variable as name: value; another value.",
                               ErrorCode.INVALID_TEMPLATE))
            continue
        found[name.strip()] = tuple(v.strip() for v in values.split(";") if v.strip())
    return found


def _edges(text: str, out: list[Problem]) -> tuple[EdgeCase, ...]:
    found: list[EdgeCase] = []
    for n, line in enumerate(_lines(text), start=1):
        parts = [p.strip() for p in line.split("|", 2)]
        if len(parts) != 3:
            out.append(Problem("edge_cases", f"Line {n}: write the edge case as name | weight | instruction.",
                               ErrorCode.INVALID_TEMPLATE))
            continue
        try:
            weight: float = float(parts[1])
        except ValueError:
            out.append(Problem("edge_cases", f"Line {n}: the weight {parts[1][:20]!r} is not a number.", ErrorCode.INVALID_TEMPLATE))
            continue
        found.append(EdgeCase(parts[0], parts[2], int(weight) if weight.is_integer() else weight))
    return tuple(found)


def _prefill(prefix: str, t: Template | None) -> None:
    """Put `t`'s content into the editor's fields once (a new edit of it, or a duplicate)."""
    if t is None or st.session_state.get(f"{prefix}.filled"):
        return
    c = t.content
    st.session_state.update({
        f"{prefix}.title": c.title, f"{prefix}.description": c.description, f"{prefix}.system": c.system_prompt,
        f"{prefix}.user": c.user_template,
        **{f"{prefix}.{name}": "\n".join(c.values(name)) for name in STANDARD_VARIABLES},
        f"{prefix}.custom": "\n".join(f"{n}: {'; '.join(c.values(n))}" for n in c.custom_variables),
        f"{prefix}.edges": "\n".join(f"{e.name} | {e.weight} | {e.instruction}" for e in c.edge_cases),
        f"{prefix}.min": c.min_turns, f"{prefix}.max": c.max_turns,
        f"{prefix}.model": c.model or _DEFAULT_MODEL, f"{prefix}.max_tokens": c.max_tokens or 0,
        f"{prefix}.filled": True})


def _show(hint: Any, found: list[Problem], *fields: str) -> None:
    """The problems of `fields` (a field and its parts: `edge_cases` takes `edge_cases.2.weight`) under one field."""
    mine = [p.message for p in found if p.field in fields
            or any(f != "variables" and p.field.startswith(f + ".") for f in fields)]
    if mine:
        hint.error(literal("\n".join(mine)), icon=":material/error:")


def editor(found: list[Template]) -> tuple[Template, list[Problem]] | None:
    """The fields of the selected template (or a new one); each problem beside its field; Save makes a version.

    Returns the edited (unsaved) template and its problems, for the preview.
    """
    slug = selected()
    base = next((t for t in found if t.name == slug), None)
    source = st.session_state.get(_key("duplicate_of"))
    prefix = _key(f"edit.{slug}.{base.version if base else 0}")
    _prefill(prefix, base if base is not None else source)
    s = get_settings()
    out: list[Problem] = []
    if base is None:
        name = st.text_input("Name (lower-case letters, digits and _)", key=f"{prefix}.slug",
                             placeholder="insurance_claim")
        name_hint = st.empty()
    else:
        name, name_hint = base.name, st.empty()
        st.caption(f"Editing version {base.version} of {literal(base.name)}; saving makes version {base.version + 1}.")
    title = st.text_input("Title", key=f"{prefix}.title")
    title_hint = st.empty()
    description = st.text_area("Description", key=f"{prefix}.description", height=68)
    system = st.text_area("System prompt (sent as written; the prefix prompt caching reuses)", key=f"{prefix}.system",
                          height=150)
    system_hint = st.empty()
    user = st.text_area("First-user-turn instruction ({persona}, {emotion}, {topic}, {turns} and your variables)",
                        key=f"{prefix}.user", height=150)
    user_hint = st.empty()
    cols = st.columns(3)
    values: dict[str, tuple[str, ...]] = {}
    var_hints: dict[str, Any] = {}
    for col, name_ in zip(cols, STANDARD_VARIABLES, strict=True):
        values[name_] = _lines(col.text_area(f"{name_.capitalize()} values (one a line)", key=f"{prefix}.{name_}"))
        var_hints[name_] = col.empty()
    custom_text = st.text_area("Custom variables (one a line: name: value; another value)", key=f"{prefix}.custom",
                               placeholder="customer: a long-time customer; a new customer")
    custom_hint = st.empty()
    values.update(_custom(custom_text, out))
    edges_text = st.text_area("Edge cases (one a line: name | weight | instruction)", key=f"{prefix}.edges",
                              placeholder="switches language | 1 | Halfway through, {persona} switches to Spanish.")
    edges_hint = st.empty()
    edges = _edges(edges_text, out)
    c1, c2, c3, c4 = st.columns(4)
    low = c1.number_input("Fewest messages", value=s.generation_min_turns, step=2, key=f"{prefix}.min")
    high = c2.number_input("Most messages", value=s.generation_max_turns, step=2, key=f"{prefix}.max")
    turns_hint = st.empty()
    models = [_DEFAULT_MODEL, *model_choices()]
    model = c3.selectbox("Default model", models, key=f"{prefix}.model")
    max_tokens = c4.number_input("Max tokens (0: the configured)", value=0, step=256, key=f"{prefix}.max_tokens")
    model_hint = st.empty()
    content = TemplateContent(
        title=title, description=description, system_prompt=system, user_template=user, variables=values,
        edge_cases=edges, min_turns=int(low), max_turns=int(high), model=None if model == _DEFAULT_MODEL else model,
        max_tokens=int(max_tokens) or None)
    out.extend(problems(content, slug=name or ""))
    blank = base is None and not any((name, title, system, user))
    if blank:
        st.caption("Fill in the fields: each problem shows under its field, and Save is there once there are none.")
    shown = [] if blank else out
    _show(name_hint, shown, "slug")
    _show(title_hint, shown, "title", "description")
    _show(system_hint, shown, "system_prompt")
    _show(user_hint, shown, "user_template")
    for name_, hint in var_hints.items():
        _show(hint, shown, f"variables.{name_}")
    _show(custom_hint, shown, "variables", *(f"variables.{n}" for n in values if n not in STANDARD_VARIABLES))
    _show(edges_hint, shown, "edge_cases")
    _show(turns_hint, shown, "turns")
    _show(model_hint, shown, "model", "max_tokens")
    draft = Template(name=name or "new_template", content=content, version=(base.version + 1) if base else 1)
    _buttons(base, draft, out)
    return draft, out


def _buttons(base: Template | None, draft: Template, found: list[Problem]) -> None:
    c1, c2, c3 = st.columns(3)
    label = f"Save as version {draft.version}" if base else "Create template"
    unchanged = base is not None and base.content == draft.content
    if found:
        c1.caption(f"{counted(len(found), 'problem')} above; fix {'it' if len(found) == 1 else 'them'} to save.")
    elif unchanged:
        c1.caption("No changes to save.")
    if c1.button(label, type="primary", key=_key("save"), disabled=bool(found) or unchanged, icon=":material/save:"):
        try:
            saved = templates.save_template(get_engine(), draft.name, draft.content,
                                            based_on=base.version if base else None)
        except ValidationError as exc:
            st.error(literal(exc.user_message), icon=":material/error:")
            return
        st.session_state.pop(_key("duplicate_of"), None)
        _select(saved.name)
        success(f"Saved {literal(saved.name)} version {saved.version}.")
        st.rerun()
    if base is not None and c2.button("Duplicate", key=_key("duplicate"), icon=":material/content_copy:"):
        st.session_state[_key("duplicate_of")] = base
        st.session_state[_key(f"edit.{_NEW}.0.slug")] = f"{base.name}_copy"[:64]
        for k in [k for k in st.session_state if str(k).startswith(_key(f"edit.{_NEW}.0."))
                  and not str(k).endswith(".slug")]:
            del st.session_state[k]
        _select(_NEW)
        st.rerun()
    if base is not None and not base.archived and c3.button("Archive", key=_key("archive"),
                                                             icon=":material/archive:"):
        try:
            templates.archive_template(get_engine(), base.name)
        except ValidationError as exc:
            st.error(literal(exc.user_message), icon=":material/error:")
            return
        success(f"Archived {literal(base.name)}; its versions stay readable.")
        _select(_NEW)
        st.rerun()


# ---- preview, "Try it", tokens ------------------------------------------------------------------------------


def preview(draft: Template, found: list[Problem]) -> None:
    """The rendered system prompt and first user turn for chosen values; the token count; one trial conversation."""
    if found:
        st.info("The preview appears once the template has no problems.", icon=":material/visibility_off:")
        return
    c = draft.content
    chosen: dict[str, str] = {}
    cols = st.columns(min(len(c.variables), 4) or 1)
    for i, name in enumerate(c.variables):
        chosen[name] = str(cols[i % len(cols)].selectbox(name.capitalize(), c.values(name),
                                                          key=_key(f"pv.{draft.name}.{name}")))
    e1, e2 = st.columns(2)
    edge = e1.selectbox("Edge case", ["(none)", *(e.name for e in c.edge_cases)], key=_key(f"pv.{draft.name}.edge"))
    turns = int(e2.number_input("Messages", value=draft.turns_near(get_settings().generation_default_turns), step=2,
                                key=_key(f"pv.{draft.name}.turns")))
    params = GenerationParams(
        template=draft.name, persona=chosen["persona"], emotion=chosen["emotion"], topic=chosen["topic"], turns=turns,
        variables={k: v for k, v in chosen.items() if k not in STANDARD_VARIABLES} or None,
        edge_case=None if edge == "(none)" else edge)
    try:
        system, user = build_prompt(params, draft)
    except ValidationError as exc:
        st.error(literal(exc.user_message), icon=":material/error:")
        return
    st.markdown("**System prompt**")
    st.code(system, language=None, wrap_lines=True)
    st.markdown("**First user turn**")
    st.code(user, language=None, wrap_lines=True)
    _count(draft)
    if st.button("Try it", key=_key("try"), icon=":material/science:",
                 help="Generate one conversation from this edit, unsaved, and show it as a chat"):
        _try(params, draft)


def _count(draft: Template) -> None:
    """The system prompt's token count against the model's cache minimum; counted once per text and model."""
    from core.templates.tokens import system_prompt_tokens

    counts = st.session_state.setdefault(_key("token_counts"), {})
    wanted = (draft.system_prompt, draft.content.model)
    if wanted not in counts:
        try:
            counts[wanted] = system_prompt_tokens(draft.system_prompt, draft.content.model, component="ui.templates")
        except AppError as exc:
            st.warning(f"The system prompt could not be counted: {literal(exc.user_message)}", icon=":material/token:")
            return
    counted = counts[wanted]
    (st.success if counted.cacheable else st.info)(literal(counted.text()), icon=":material/token:")


def _try(params: GenerationParams, draft: Template) -> None:
    """One conversation from the unsaved edit, shown as a chat and not kept as a dataset item."""
    from core.generation.service import agenerate_conversation
    from core.llm.client import get_client
    from core.llm.loops import run_sync

    client = get_client()
    try:
        with st.spinner("Generating one conversation…"):
            result = run_sync(agenerate_conversation(params, client=client, component="ui.templates.try",
                                                     template=draft))
    except AppError as exc:
        st.error(literal(exc.user_message), icon=":material/error:")
        return
    if client.provider == "sandbox":
        st.caption("From the offline sandbox, not Claude. Not saved.")
    else:
        st.caption(f"From {literal(result.llm.model)}. Not saved; ${result.cost_usd:.4f}.")
    for turn in result.conversation.turns:
        with st.chat_message(turn.role):
            st.markdown(literal(turn.content))


# ---- history and files ---------------------------------------------------------------------------------------


def diff(slug: str) -> None:
    """The difference between two versions of `slug`, as their YAML files."""
    if slug == _NEW:
        return
    history = templates.template_history(get_engine(), slug)
    if len(history) < 2:
        st.caption("Only one version so far: nothing to compare.")
        return
    versions = [t.version for t in history]
    c1, c2 = st.columns(2)
    old = c1.selectbox("From version", versions, index=len(versions) - 2, key=_key(f"diff.{slug}.a"))
    new = c2.selectbox("To version", versions, index=len(versions) - 1, key=_key(f"diff.{slug}.b"))
    by_version = {t.version: t for t in history}
    lines = difflib.unified_diff(dump(by_version[old]).splitlines(), dump(by_version[new]).splitlines(),
                                 f"version {old}", f"version {new}", lineterm="")
    text = "\n".join(lines)
    st.code(text or "The two versions say the same.", language="diff")


def transfer(found: list[Template]) -> None:
    """Export the selected template as YAML; import a file as a new template or its next version."""
    slug = selected()
    current = next((t for t in found if t.name == slug), None)
    if current is not None:
        st.download_button(f"Export {current.name}.yaml", dump(current), file_name=f"{current.name}.yaml",
                           mime="application/x-yaml", key=_key("export"), icon=":material/download:")
    upload = st.file_uploader("Import a template file (.yaml)", type=["yaml", "yml"], key=_key("import"))
    hint = st.empty()
    if upload is None or not st.button("Import", key=_key("import_go"), icon=":material/upload:"):
        return
    try:
        name, content = load(upload.getvalue())
        saved = templates.save_template(get_engine(), name, content)
    except TemplateFileInvalid as exc:
        hint.error(literal("\n".join(f"{p.field}: {p.message}" for p in exc.problems)), icon=":material/error:")
        return
    except ValidationError as exc:
        hint.error(literal(exc.user_message), icon=":material/error:")
        return
    _select(saved.name)
    success(f"Imported {literal(saved.name)} as version {saved.version}.")
    st.rerun()
