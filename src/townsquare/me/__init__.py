"""The signed-in person's cross-org views, above auth and orgs."""
