"""The REST API (/api/v1/): the gallery's models and services for scripts and other programs."""
