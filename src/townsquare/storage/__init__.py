"""File storage: one small interface, a local-folder backend and an S3 backend."""
