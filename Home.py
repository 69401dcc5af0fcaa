"""Entrypoint: navigation over pages/."""

import streamlit as st

st.set_page_config(page_title="LoRA Conversation Studio", page_icon=":material/forum:", layout="wide")
st.title("LoRA Conversation Studio")
st.write("Pages arrive with the app issue.")
