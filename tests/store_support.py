"""Scripts run on the embedded store's own Python (.venv-store), for the tests of its patches and
of the year loader."""
from __future__ import annotations

import subprocess

from tests.conftest import ROOT

# put at the top of a script, before mongoeco is imported: every SQL statement of every connection
# of the store is appended to ``statements``
TRACE_SQL = r'''
import sqlite3
statements = []
connect = sqlite3.connect
def traced(*args, **kwargs):
    connection = connect(*args, **kwargs)
    connection.set_trace_callback(statements.append)
    return connection
sqlite3.connect = traced
'''


def store_python(script: str, *args, timeout: float = 300) -> str:
    """Run ``script`` on the store's Python with the project root as argv[1] and ``args`` after it;
    what it printed."""
    done = subprocess.run([str(ROOT / ".venv-store" / "bin" / "python"), "-c", script, str(ROOT), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
