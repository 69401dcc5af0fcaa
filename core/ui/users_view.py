"""The Users page's pieces (admins only): everyone who has signed in or been added, and a role change.

Names and emails come from the identity provider (anyone picks their own display name): they
are shown in the table as cells, and in any Markdown only through `literal`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.auth import Role
from core.auth.users import list_users, set_role
from core.redact import redact_cut
from core.store import get_engine
from core.ui.boundaries import callback, section_key
from core.ui.safe import literal
from core.ui.timefmt import ago, exact
from core.ui.toasts import success
from core.wording import counted

__all__ = ["listing", "role_change"]

_K = "users"
_CELL_MAX = 80
_ROLES = [r.value for r in Role]


def _key(name: str) -> str:
    return section_key(_K, name)


def _label(user: dict[str, Any]) -> str:
    name, email = redact_cut(user["name"] or "", _CELL_MAX), redact_cut(user["email"] or "", _CELL_MAX)
    return f"{name} · {email}" if name and email and name != email else (name or email or user["id"][:8])


def listing() -> list[dict[str, Any]]:
    """Every user, oldest first, as a table; returns them."""
    users = list_users(get_engine())
    frame = pd.DataFrame([{
        # stored text is untrusted: redacted (rows from before sign-in redacted emails) and cut for the table
        "Name": redact_cut(u["name"] or "", _CELL_MAX), "Email": redact_cut(u["email"] or "", _CELL_MAX),
        "Role": u["role"],
        "Status": "active" if u["signed_in"] else "added, not signed in yet",
        "Last seen": ago(u["last_seen_at"]) if u["signed_in"] and u["last_seen_at"] else "never",
        "Created (UTC)": exact(u["created_at"]),
        "Id": u["id"][:8]} for u in users])
    st.caption(counted(len(users), "user"))
    st.dataframe(frame, hide_index=True)
    return users


def role_change(users: list[dict[str, Any]]) -> None:
    """Pick a user and a role; the change happens only after a confirmation that names both."""
    by_id = {u["id"]: u for u in users}
    c1, c2, c3 = st.columns([3, 1.5, 1.5], vertical_alignment="bottom")
    picked = c1.selectbox("User", list(by_id), index=None, key=_key("user"), placeholder="Choose a user",
                          format_func=lambda i: _label(by_id[i]))
    current = by_id[picked]["role"] if picked in by_id else _ROLES[0]
    role = c2.selectbox("New role", _ROLES, index=_ROLES.index(current), key=_key(f"role_{picked}"),
                        disabled=picked is None)
    c3.button("Change role…", key=_key("ask"), icon=":material/manage_accounts:",
              disabled=picked is None or role == current, on_click=_ask, args=(picked, role))
    asked = st.session_state.get(_key("asked"))
    if not asked or asked[0] not in by_id:
        return
    user, new_role = by_id[asked[0]], asked[1]
    st.warning(f"Change the role of **{literal(_label(user))}** from **{literal(user['role'])}** to "
               f"**{literal(new_role)}**? {_what_it_means(new_role)}", icon=":material/warning:")
    d1, d2, _ = st.columns([1.2, 1, 4])
    d1.button("Yes, change it", key=_key("confirm"), type="primary", on_click=_confirm, args=(user["id"], new_role))
    d2.button("Cancel", key=_key("cancel"), on_click=_drop_ask)


def _what_it_means(role: str) -> str:
    return {
        "analyst": "An analyst sees and acts on their own work only.",
        "reviewer": "A reviewer also sees everyone's batches and conversations, for review.",
        "admin": "An admin sees and does everything, including users, settings and cleanup.",
    }.get(role, "")


def _ask(user_id: str, role: str) -> None:
    st.session_state[_key("asked")] = (user_id, role)


def _drop_ask() -> None:
    st.session_state.pop(_key("asked"), None)


@callback
def _confirm(user_id: str, role: str) -> None:
    _drop_ask()
    changed = set_role(get_engine(), user_id, role)
    success(f"{literal(changed.label)} is now {literal(changed.role or role)}.")
