"""Notebook panels (ipywidgets + matplotlib, each with a static HTML fallback).

``runs_panel.RunsPanel`` (``%mlops runs``), ``registry_panel.RegistryPanel`` (``%mlops registry``),
``drift_panel.DriftPanel`` (``%mlops drift``).  Import the module you need: each pulls in ipywidgets.
"""
