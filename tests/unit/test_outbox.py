"""The gateway's outbox survives SIGKILL: rows committed before the kill are all there, in
order, after it; nothing leaves before it is acknowledged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from gateway.outbox import Outbox, OutboxReading
from tests.stack import ROOT

WRITER = """
import sys
from pathlib import Path
from gateway.outbox import Outbox, OutboxReading
box = Outbox(Path(sys.argv[1]))
i = 0
while True:
    box.append([OutboxReading("ox-1", "spo2_pct", 1_000 * i, 97.0, 0)])
    print(i, flush=True)
    i += 1
"""


def test_rows_committed_before_sigkill_are_all_replayed_in_order(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    confirmed = -1
    deadline = time.monotonic() + 20
    while confirmed < 300 and time.monotonic() < deadline:
        confirmed = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    box = Outbox(path)
    rows = box.pending_after(0, 1_000_000)
    # everything it reported as committed is there (perhaps one more, in flight at the kill)
    assert len(rows) >= confirmed + 1
    assert [r.time_ms for r in rows] == [1_000 * i for i in range(len(rows))]
    assert [r.seq for r in rows] == sorted(r.seq for r in rows)


def test_sequence_numbers_are_never_reused(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    box.append([OutboxReading("ox-1", "spo2_pct", t, 97.0, 0) for t in range(5)])
    rows = box.pending_after(0, 10)
    box.delete_range(rows[0].seq, rows[-1].seq)
    box.close()
    box = Outbox(tmp_path / "o.sqlite3")
    box.append([OutboxReading("ox-1", "spo2_pct", 99, 97.0, 0)])
    [after] = box.pending_after(0, 10)
    assert after.seq == rows[-1].seq + 1
    assert box.depth() == 1
