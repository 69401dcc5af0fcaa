"""The only part of core that imports streamlit: boundaries, toasts, widgets, the current user."""
