"""Pipelines: recipes (`edgemed run`), the embedded demo, and the deployment search (`optimize`)."""
