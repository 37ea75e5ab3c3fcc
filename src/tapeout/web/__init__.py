"""The web interface (``tapeout ui``); the page it serves and the self-contained HTML reports (``--html``)
are :mod:`tapeout.report.html`, below ``explore`` (whose ``--report RUN --html`` writes one) and this package.

- :mod:`tapeout.web.schema`: the JSON request bodies, derived from the Python API's signatures;
- :mod:`tapeout.web.app`: the FastAPI app (``create_app``): the page and the JSON API, a thin wrapper
  over :func:`tapeout.predict`, :func:`tapeout.simulate`, the cost report and the catalogs;
- :mod:`tapeout.web.cli`: ``tapeout ui``.

Only :mod:`tapeout.web.app` and :mod:`tapeout.web.cli` need the ``ui`` extra (FastAPI, uvicorn); the
reports need plotly alone.
"""
