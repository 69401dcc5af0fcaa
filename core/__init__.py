"""LoRA Conversation Studio: everything that is not page layout.

Importing the package makes every log line of the process pass the redactor: the app, the CLI,
the workers and the tests all import it before they log anything.
"""

from core.redact import install_log_redaction

install_log_redaction()
