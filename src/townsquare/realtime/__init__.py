"""Live events: a bus (memory in one process, Redis across many) and the WebSocket."""
