"""The monitoring dashboard: windows, time-series charts, a feature x window drift heat map, alerts and links
to each window's Evidently reports, read live from the metrics store; all assets bundled (works offline).

`dashboard_app(store, reports_dir, api_keys=...)` is the app to mount at /dashboard (the service's
`create_app(..., dashboard=...)` does; so can the simulation, served by `server.start_server`);
`standalone_app` serves it on its own (`forwardlab monitor dashboard`).
"""

from forwardlab.monitor.dashboard.app import app_from_paths, dashboard_app, standalone_app

__all__ = ["app_from_paths", "dashboard_app", "standalone_app"]
