"""Generate: arriving soon."""

import streamlit as st

st.title("Generate")
