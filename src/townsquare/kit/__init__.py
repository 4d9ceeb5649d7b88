"""Small helpers shared by every domain. `kit` imports no domain."""
