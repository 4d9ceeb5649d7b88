"""The media library: uploads checked by their bytes, image variants, quotas, cleanup."""
