"""takeone: a self-hosted, Segmind-compatible serverless API for AI video generation."""

__version__ = "0.1.0"
