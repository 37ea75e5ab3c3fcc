"""``tapeout ui``: serve the page and the JSON API on localhost (the ``ui`` extra: FastAPI, uvicorn)."""

from __future__ import annotations

from typing import Annotated

import typer

from tapeout.cliutil import fail


def ui_command(
    host: Annotated[str, typer.Option(help="address to bind (default: this machine only)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
) -> None:
    """Serve the web interface: inputs, results, roofline, breakdowns, compare, exploration, serving."""
    try:
        import uvicorn

        from tapeout.web.app import create_app
    except ImportError as exc:
        fail(f"the web interface needs the ui extra ({exc.name} is missing); allowed: pip install 'tapeout[ui]'")
    if not 0 < port < 65536:
        fail(f"port: {port} is not a TCP port; allowed: 1 to 65535")
    app = create_app()
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"tapeout ui: http://{shown}:{port}/  (API schema: http://{shown}:{port}/openapi.json; Ctrl-C stops)")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    except (OSError, SystemExit) as exc:
        fail(f"cannot serve on {host}:{port}: {exc}")


__all__ = ["ui_command"]
