"""Review (reviewers and admins): the queue one conversation at a time, accept / reject / edit by key, bulk decisions."""

import streamlit as st

from core.review import ReviewFilter
from core.ui import review_view as view
from core.ui.boundaries import fragment, section

st.title("Review")
view.keyboard()

flt = None
with section("filters"):
    flt = view.filters()


@fragment
def queue(flt: ReviewFilter) -> None:
    """A decision or a move reruns only this part, so the next conversation comes without the rest of the page."""
    with section("bulk"):
        view.bulk(flt)
    with section("queue"):
        view.queue(flt)


if flt is not None:
    queue(flt)
