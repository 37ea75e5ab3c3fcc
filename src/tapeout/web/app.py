"""The web server of ``tapeout ui``: the page and a JSON API over the Python API (it computes nothing of
its own).

- ``POST /api/predict``: :func:`tapeout.predict`'s keyword arguments -> ``Prediction.to_dict()`` (what
  ``tapeout predict --format json`` prints);
- ``POST /api/simulate``: :func:`tapeout.simulate`'s -> ``SimResult.to_dict()`` (``tapeout simulate
  --format json``); with ``?series=true`` also ``series``: the latency CDFs and KV use over time;
- ``POST /api/capacity``: :func:`tapeout.serving.capacity.capacity`'s -> ``tapeout capacity --format json``
  (the search over TP, replicas and engine limits for the SLOs; one simulation per point, so seconds to a minute);
- ``POST /api/cost``: :func:`tapeout.cost.cli.cost_report`'s -> ``tapeout cost --format json``;
- ``GET /api/models``, ``/api/hardware``: the catalogs (``tapeout models|hardware --format json``, with the
  sources); ``GET /api/models/{name}``, ``/api/hardware/{name}``: one spec (``tapeout show NAME --format json``);
- ``GET /api/options``: the choices the page's inputs offer;
- ``GET /api/explore?db=RUN``: a stored exploration run (``tapeout explore --report RUN``'s data).

The request bodies come from the API's signatures (:mod:`tapeout.web.schema`). Bad input is HTTP 422 with
``{"detail": "<the one line the CLI prints after 'error: '>"}``.
"""


from typing import Any, Callable

from fastapi import Body, FastAPI, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response

from tapeout.errors import TapeoutError
from tapeout.report import html as page
from tapeout.web.schema import call, request_model

ERROR = {"description": "bad input: one line naming the field and what is allowed",
         "content": {"application/json": {"schema": {
             "type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}}}}
RESPONSES: dict[int | str, dict[str, Any]] = {422: ERROR, 404: ERROR}


def _bad(status: int, msg: str) -> JSONResponse:
    return JSONResponse({"detail": msg}, status_code=status)


def _request_error(exc: RequestValidationError) -> str:
    """A request that does not match the schema, as one line: 'field: message' (the first three)."""
    parts = []
    errs = exc.errors()
    for e in errs[:3]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
        parts.append(f"{loc}: {e.get('msg', 'invalid')}" if loc else str(e.get("msg", "invalid")))
    return "; ".join(parts) + (f" (+{len(errs) - 3} more)" if len(errs) > 3 else "")


def _post(app: FastAPI, path: str, fn: Callable[..., Any], result: Callable[[Any, Any], Any], summary: str) -> None:
    """``POST path``: the body validated as ``request_model(fn)``, ``fn`` called, ``result`` its JSON."""
    model = request_model(fn)

    def endpoint(body: model = Body(...), series: bool = Query(False, include_in_schema=False)):  # type: ignore[valid-type]
        try:
            return JSONResponse(result(call(fn, body), series))
        except TapeoutError as exc:
            return _bad(422, str(exc))

    endpoint.__name__ = fn.__name__
    app.post(path, summary=summary, responses=RESPONSES)(endpoint)


def create_app() -> FastAPI:
    """The FastAPI app: the page at ``/``, its assets at ``/static/``, the JSON API at ``/api/``."""
    import tapeout
    from tapeout.cost.cli import cost_report
    from tapeout.serving.capacity import capacity

    app = FastAPI(title="tapeout", version=tapeout.__version__,
                  description="LLM inference latency, throughput, memory and cost on real or imagined hardware: "
                              "a JSON API over tapeout's Python API, and the page that uses it.")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Any, exc: RequestValidationError) -> JSONResponse:  # noqa: ARG001
        return _bad(422, _request_error(exc))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(page.live_html())

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        asset = page.asset(name)
        if asset is None:
            return _bad(404, f"no asset {name!r}")
        body, media = asset
        return Response(body, media_type=media, headers={"Cache-Control": "max-age=3600"})

    def _sim(res: Any, series: bool) -> dict[str, Any]:
        from tapeout.serving.export import series_dict

        return res.to_dict() | ({"series": series_dict(res)} if series else {})

    _post(app, "/api/predict", tapeout.predict, lambda p, _s: p.to_dict(),
          "Predict TTFT, TPOT, throughput, memory and per-op costs (tapeout predict --format json)")
    _post(app, "/api/simulate", tapeout.simulate, _sim,
          "Simulate serving a stream of requests (tapeout simulate --format json); ?series=true adds the plots' data")
    _post(app, "/api/capacity", capacity, lambda d, _s: d,
          "The highest request rate meeting the SLOs, or the cheapest configuration for a rate, over TP, replicas "
          "and engine limits (tapeout capacity --format json)")
    _post(app, "/api/cost", cost_report, lambda d, _s: d,
          "Die area, device cost, power, $/hour and, with a model, $/Mtok (tapeout cost --format json)")

    @app.get("/api/models", summary="The model catalog with the source of each model")
    def models() -> JSONResponse:
        from tapeout.models.catalog import list_models
        from tapeout.report.catalog import model_rows

        return JSONResponse(model_rows(list_models()))

    @app.get("/api/hardware", summary="The device catalog with the sources of its numbers")
    def hardware() -> JSONResponse:
        from tapeout.hardware.catalog import list_hardware
        from tapeout.report.catalog import hardware_rows

        return JSONResponse(hardware_rows(list_hardware()))

    @app.get("/api/models/{name:path}", summary="One model spec (tapeout show NAME --format json)", responses=RESPONSES)
    def model(name: str) -> JSONResponse:
        from tapeout.errors import UnknownNameError
        from tapeout.models.catalog import find_model, model_names

        spec = find_model(name)
        if spec is None:
            return _bad(404, str(UnknownNameError("model", name, model_names(), field="model")))
        return JSONResponse(spec.model_dump(mode="json"))

    @app.get("/api/hardware/{name}", summary="One device spec with its sources (tapeout show NAME --format json)",
             responses=RESPONSES)
    def device(name: str) -> JSONResponse:
        from tapeout.errors import UnknownNameError
        from tapeout.hardware.catalog import find_hardware, hardware_names

        spec = find_hardware(name)
        if spec is None:
            return _bad(404, str(UnknownNameError("hardware", name, hardware_names(), field="hardware")))
        return JSONResponse(spec.model_dump(mode="json"))

    @app.get("/api/options", summary="The choices of the page's inputs (formats, tiers, frameworks, ...)")
    def options() -> JSONResponse:
        return JSONResponse(page.options())

    @app.get("/api/explore", summary="A stored exploration run (tapeout explore --report RUN)", responses=RESPONSES)
    def explore(db: str = Query(..., description="path of the run database on the server")) -> JSONResponse:
        from tapeout.explore import report as rp

        try:
            return JSONResponse(rp.to_dict(rp.load_run(db)))
        except TapeoutError as exc:
            return _bad(422, str(exc))

    return app


__all__ = ["create_app"]
