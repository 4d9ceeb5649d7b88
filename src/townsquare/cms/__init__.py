"""The CMS: articles, revisions, scheduled publishing, categories, tags, public reads."""
