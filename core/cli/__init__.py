"""Command groups of `python -m core`; each module exposes register(subparsers)."""
