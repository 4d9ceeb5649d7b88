"""The duty runner: background sweeps of durable state, in the web process or standalone."""
