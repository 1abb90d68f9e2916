"""The monitoring dashboard: windows, time-series charts, a feature x window drift heat map, alerts and links
to each window's Evidently reports, read live from the metrics store; all assets bundled (works offline).

`dashboard_app(store, reports_dir, api_keys=...)` is the app to mount at `DASHBOARD_PATH`, /dashboard (the
service's `create_app(..., dashboard=...)` does; so can the simulation, served by `server.start_server`);
`standalone_app` serves it on its own (`forwardlab monitor dashboard`). API keys are checked by `auth`, as the
service checks them; the dashboard does not import the service.
"""

from forwardlab.monitor.dashboard.app import DASHBOARD_PATH, app_from_paths, dashboard_app, standalone_app

__all__ = ["DASHBOARD_PATH", "app_from_paths", "dashboard_app", "standalone_app"]
