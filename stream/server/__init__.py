"""The HTTP face of the pipeline: routes, WHIP ingest, pages and their assets."""
