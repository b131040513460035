"""jupyter_server extension: the JSON API behind the JupyterLab "MLOps" sidebar.

Enabled by ``etc/jupyter/jupyter_server_config.d/mlops_nb.json`` (installed with
the package), or by hand with ``jupyter server extension enable mlops_nb``.
Everything it serves comes from the same Python API the notebook uses
(``mlops_nb.registry``, the store's ``list_*`` methods, ``mlops_nb.jobs``), so
promotion policy and audit apply to what the sidebar does.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MlopsNb"]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "mlops_nb.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Register the API handlers on ``serverapp`` (called by jupyter_server)."""
    from jupyter_server.utils import url_path_join

    from .app import API_PREFIX, MlopsNb
    from .chart_handlers import chart_handlers
    from .handlers import handlers

    settings = MlopsNb(root_dir=serverapp.root_dir, config=serverapp.config, parent=serverapp)
    web_app = serverapp.web_app
    base = url_path_join(web_app.settings["base_url"], API_PREFIX)
    web_app.settings["mlops_nb"] = settings
    web_app.add_handlers(".*$", [(url_path_join(base, pattern), handler) for pattern, handler in [*handlers, *chart_handlers]])
    serverapp.log.info("mlops_nb: sidebar API at %s (registry %s)", base, settings.registry_info()["store_url"])


def __getattr__(name: str) -> Any:
    if name == "MlopsNb":
        from .app import MlopsNb

        return MlopsNb
    raise AttributeError(name)
