"""Review (reviewers and admins): the queue one conversation at a time, accept / reject / edit by key, bulk decisions."""

import streamlit as st

from core.ui import review_view as view
from core.ui.boundaries import section

st.title("Review")
view.keyboard()

flt = None
with section("filters"):
    flt = view.filters()

if flt is not None:
    with section("bulk"):
        view.bulk(flt)
    with section("queue"):
        view.queue(flt)
