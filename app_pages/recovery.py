"""Recovery: arriving soon."""

import streamlit as st

st.title("Recovery")
