"""The support chat: conversations between customers and an organization's agents."""
