"""Notebook jobs: validate, run, batch and schedule notebooks with papermill."""
