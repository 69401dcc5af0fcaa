"""Model access: the Claude client, prices, and the offline sandbox model server.

Import from the modules: `core.llm.client` (the client; it imports the anthropic SDK, which
takes most of a second), `core.llm.pricing` (the price table, plain data) and
`core.llm.sandbox`. This package re-exports nothing, so the price table and the sandbox
load without the SDK.
"""
