"""Lamina: a self-hosted, AWS-Lambda-compatible serverless platform."""

__version__ = "0.1.0"
