"""Batches: create and control them (service), work them (worker), parse uploads (csv_import).

Pages and the CLI call the service functions; the worker runs in the app (one background
thread per server process, `background`) or as `python -m core worker` processes. Callers
import the module they need (`from core.batches import service`), so loading the service
does not load the worker.
"""
