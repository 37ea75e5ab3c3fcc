"""The results store of one exploration run: an SQLite file (stdlib ``sqlite3``, WAL journal).

Tables:

- ``meta(key, value)``: the space (JSON), its digest, the tapeout version, creation time;
- ``points(key, params, metrics, feasible, objectives, finished_at)``: one row per finished
  design point, inputs and outputs as JSON, committed the moment its result arrives;
- ``evaluations(id, key, finished_at)``: an append-only log with one row per evaluation, written
  in the same transaction as its point, so a point evaluated twice would show twice here;
- ``search(key, generation)``: the NSGA-II generation a point was first told in (for resuming).

A killed run loses at most the points still being evaluated; a resumed run skips every key in
``points``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable

from tapeout.errors import TapeoutError
from tapeout.cliutil import json_safe

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS points (
    key TEXT PRIMARY KEY, params TEXT NOT NULL, metrics TEXT NOT NULL, feasible INTEGER NOT NULL,
    objectives TEXT NOT NULL, finished_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS evaluations (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, finished_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS search (key TEXT PRIMARY KEY, generation INTEGER NOT NULL);
"""


def _dumps(x: Any) -> str:
    return json.dumps(json_safe(x), sort_keys=True, separators=(",", ":"))


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)

    # ---- run metadata -------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def bind(self, space_json: str, digest: str) -> None:
        """Record the space of a new run, or check that a resumed run explores the same space."""
        old = self.meta("space_digest")
        if old is None:
            from tapeout import __version__

            with self.conn:
                self.conn.execute("BEGIN")
                self.conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [
                    ("space", space_json), ("space_digest", digest), ("created", repr(time.time())),
                    ("tapeout_version", __version__)])
        elif old != digest:
            raise TapeoutError(f"{self.path} holds a run of a different space (digest {old}, this space {digest}); "
                               "use another --db or --fresh", field="db")

    # ---- points ---------------------------------------------------------------------------------
    def done_keys(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT key FROM points")}

    def add(self, key: str, params: dict[str, Any], metrics: dict[str, Any]) -> None:
        """Store one finished point and log its evaluation, atomically."""
        now = time.time()
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.execute(
                "INSERT OR REPLACE INTO points VALUES (?, ?, ?, ?, ?, ?)",
                (key, _dumps(params), _dumps(metrics), int(bool(metrics.get("feasible"))),
                 _dumps(metrics.get("objectives", [])), now))
            self.conn.execute("INSERT INTO evaluations (key, finished_at) VALUES (?, ?)", (key, now))
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def get(self, key: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT metrics FROM points WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def points(self) -> Iterable[tuple[str, dict[str, Any], dict[str, Any]]]:
        for key, params, metrics in self.conn.execute("SELECT key, params, metrics FROM points ORDER BY finished_at, key"):
            yield key, json.loads(params), json.loads(metrics)

    def count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM points").fetchone()[0]

    def evaluation_counts(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT key, COUNT(*) FROM evaluations GROUP BY key"))

    def set_generation(self, key: str, generation: int) -> None:
        self.conn.execute("INSERT OR IGNORE INTO search VALUES (?, ?)", (key, int(generation)))

    def generations(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT key, generation FROM search"))

    def close(self) -> None:
        self.conn.close()


__all__ = ["Store"]
