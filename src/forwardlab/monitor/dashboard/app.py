"""The dashboard as a FastAPI app, mounted at /dashboard: on the prediction service (`create_app(dashboard=...)`),
on its own (`forwardlab monitor dashboard`), or inside the simulation (`dashboard_app` + `server.start_server`).

Routes, relative to the mount point:
- `/` the page (HTML + bundled JS); it polls `api/summary` and redraws when the store changed;
- `api/summary?window=SPEC` the page's data as JSON (`summary.Summary`);
- `files/PATH` the files of the reports folder (the Evidently reports the windows link to);
- `login` (GET form, POST key) and `logout` (POST);
- `static/...` the page's scripts, styles and vendored uPlot: public, they hold no data.

Everything but `static` and `login` needs a valid API key: a session cookie from the login form, or the
service's `X-API-Key` header (scripts, curl). Without one, pages and files redirect to the login form and
the JSON endpoint answers 401.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import string
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs, quote

import sqlalchemy as sa
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from forwardlab.monitor.auth import API_KEY_HEADER, key_is_valid, load_api_keys, required_keys
from forwardlab.monitor.dashboard import session
from forwardlab.monitor.dashboard.summary import summarize
from forwardlab.monitor.errors import ServiceConfigError
from forwardlab.monitor.store import Store

# Where the dashboard is served: the prediction service mounts it here, and so does `standalone_app`. It lives
# with the dashboard because the dashboard is what is mounted: the service imports it, never the reverse.
DASHBOARD_PATH = "/dashboard"
HERE = Path(__file__).parent
DEFAULT_REFRESH_S = 5.0
_LOGIN_PAGE = string.Template((HERE / "templates" / "login.html").read_text(encoding="utf-8"))


class LoginRequired(Exception):
    """A browser page was asked for without a session: answered with a redirect to the login form."""


def dashboard_app(
    store: Store,
    reports_dir: str | Path,
    *,
    api_keys: Iterable[str],
    refresh_s: float = DEFAULT_REFRESH_S,
) -> FastAPI:
    """The dashboard over `store` and the reports folder of its monitoring runs (`run --out DIR`).

    Mount it at /dashboard (`create_app(..., dashboard=...)` does) or serve `standalone_app`. The caller owns
    `store`. `refresh_s`: how often the page polls for new windows.
    """
    keys = required_keys(api_keys, serving="the dashboard")
    reports = Path(reports_dir)
    files = StaticFiles(directory=reports, check_dir=False)
    app = FastAPI(title="forwardlab monitoring dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def signed_in(request: Request) -> bool:
        header = request.headers.get(API_KEY_HEADER)
        if header is not None:
            return key_is_valid(header, keys)
        return session.verify(request.cookies.get(session.COOKIE_NAME), keys)

    def page_access(request: Request) -> None:
        if not signed_in(request):
            raise LoginRequired

    def api_access(request: Request) -> None:
        if not signed_in(request):
            raise HTTPException(
                401,
                f"sign in at {_root(request)}/login or send the header {API_KEY_HEADER}",
                {"WWW-Authenticate": "ApiKey"},
            )

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, _: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{_root(request)}/login?next={quote(target, safe='')}", status_code=303)

    @app.get("/", dependencies=[Depends(page_access)], response_class=FileResponse)
    def index() -> FileResponse:
        return FileResponse(HERE / "templates" / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/api/summary", dependencies=[Depends(api_access)])
    def api_summary(
        request: Request,
        window: Annotated[
            str | None, Query(description="Window spec (month, week, N-days); default: newest run's.")
        ] = None,
    ) -> Response:
        """The page's data (`summary.Summary`), with an ETag so an unchanged poll costs a 304."""
        try:
            body = summarize(store, reports, window_spec=window, refresh_s=refresh_s).model_dump_json()
        except sa.exc.SQLAlchemyError as exc:  # the page keeps its last data and says it cannot update
            raise HTTPException(503, f"metrics store unavailable: {type(exc).__name__}") from exc
        etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if request.headers.get("If-None-Match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    @app.get("/files/{path:path}", dependencies=[Depends(page_access)])
    async def report_file(path: str, request: Request) -> Response:
        try:
            return await files.get_response(path, request.scope)
        except StarletteHTTPException as exc:
            raise HTTPException(exc.status_code, f"{path}: no such file in the reports folder") from exc

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str | None = None) -> HTMLResponse:
        return _login_page(request, next, error=None, status=200)

    @app.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        # The form is two urlencoded fields: parsed here rather than adding python-multipart for FastAPI's Form.
        form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
        key, target = form.get("key", [""])[0], form.get("next", [""])[0]
        if not key_is_valid(key, keys):
            return _login_page(request, target, error="That is not one of this service's API keys.", status=401)
        response = RedirectResponse(_safe_next(request, target), status_code=303)
        response.set_cookie(
            session.COOKIE_NAME,
            session.issue(key.encode()),
            max_age=session.SESSION_S,
            path=_root(request) + "/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @app.post("/logout")
    def logout(request: Request) -> Response:
        response = RedirectResponse(f"{_root(request)}/login", status_code=303)
        response.delete_cookie(session.COOKIE_NAME, path=_root(request) + "/")
        return response

    return app


def standalone_app(
    store_url: str, reports_dir: str | Path, *, api_keys: Iterable[str], refresh_s: float = DEFAULT_REFRESH_S
) -> FastAPI:
    """The dashboard on its own, at /dashboard (/ redirects there); the app opens and closes the store."""
    store = Store(store_url)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            store.close()

    app = FastAPI(title="forwardlab monitoring dashboard", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.mount(DASHBOARD_PATH, dashboard_app(store, reports_dir, api_keys=api_keys, refresh_s=refresh_s))

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse(f"{DASHBOARD_PATH}/", status_code=307)

    return app


def app_from_paths(
    store_url: str,
    reports_dir: str | Path,
    *,
    api_keys: Iterable[str] | None = None,
    api_keys_file: str | Path | None = None,
) -> FastAPI:
    """What `forwardlab monitor dashboard` serves: checks that the store and the reports folder exist first."""
    keys = load_api_keys(api_keys, api_keys_file)
    required_keys(keys)  # refused before the store and the folder are looked at
    reports = Path(reports_dir)
    if not reports.is_dir():
        raise ServiceConfigError(f"{reports}: the reports folder does not exist (the --out of `monitor run`)")
    database = store_url.partition(":///")[2] if store_url.startswith("sqlite") else ""
    if database and database != ":memory:" and not Path(database).is_file():
        raise ServiceConfigError(f"{store_url}: no such store file (the --store of `monitor run`)")
    return standalone_app(store_url, reports, api_keys=keys)


def _root(request: Request) -> str:
    """Where the dashboard is mounted (e.g. /dashboard), so links work under any mount point."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _safe_next(request: Request, target: str | None) -> str:
    """`target` when it is a page of this dashboard; otherwise the dashboard's home (no open redirects)."""
    root = _root(request) + "/"
    if target and target.startswith(root) and not target.startswith("//") and "\\" not in target:
        return target
    return root


def _login_page(request: Request, target: str | None, *, error: str | None, status: int) -> HTMLResponse:
    body = _LOGIN_PAGE.substitute(
        root=html.escape(_root(request)),
        next=html.escape(_safe_next(request, target)),
        error="" if error is None else f'<p class="error" role="alert">{html.escape(error)}</p>',
    )
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
