"""Shared analysis code for orchlab reports: loading, metric metadata, statistics, style."""
