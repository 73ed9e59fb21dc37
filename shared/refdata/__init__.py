"""Reference data of a district: units, taxonomy, grids, components and business calendar.

Pure: it reads files and nothing else (no network, no database).  The data lives in a folder of
human-editable YAML/GeoJSON files; the default is the fictional district shipped in
``shared/refdata/default_district`` (see its README.md).  Point ``REFDATA_DIR`` at another folder
with the same files to run the platform on another district.

    >>> from shared.refdata import load_district
    >>> district = load_district()
    >>> district.minor_class("E0302")["joint"]
    ['transport', 'police', 'environment']
    >>> district.locate(106.3904, 29.8338)["grid_code"]
    '500190001001001'

Everything is validated at load time; a problem raises :class:`RefdataError` (a ``ValueError``)
naming the file and the entry.  Loaded districts are cached per folder and shared: treat the
attributes as read-only (the accessor methods return copies).
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from .common import (CASE_KINDS, DEFAULT_DIR, FILES, KIND_LETTERS, LEAD_UNIT,  # noqa: F401
                     PARTNER_KEYS, PARTNER_UNITS, UNIT_TYPES, URGENCIES, RefdataError,
                     sms_number)
from .loading import Loader
from .practices import Practices
from .queries import Queries
from .spatial import Spatial

__all__ = [
    "DEFAULT_DIR", "PARTNER_KEYS", "PARTNER_UNITS", "LEAD_UNIT", "UNIT_TYPES", "CASE_KINDS",
    "URGENCIES", "District", "RefdataError", "load_district", "clear_cache", "sms_number",
]


class District(Loader, Queries, Spatial, Practices):
    """One district's reference data, validated.  Build it with :func:`load_district`.

    Loading and checking: :mod:`shared.refdata.loading`; taxonomy, units and policy questions:
    :mod:`shared.refdata.queries`; spatial lookups: :mod:`shared.refdata.spatial`; 双街长/双路长,
    联络员 and the three service levels: :mod:`shared.refdata.practices`."""


def _resolve_dir(path) -> Path:
    if path is None or str(path) == "":
        env = os.environ.get("REFDATA_DIR", "").strip()
        path = env or DEFAULT_DIR
    return Path(path).expanduser().resolve()


def load_district(path: str | os.PathLike | None = None) -> "District":
    """The district in ``path``, else ``$REFDATA_DIR`` when set and non-empty, else the default.

    Cached per resolved folder: call :func:`clear_cache` after editing the files in a running
    process.
    """
    return _load_cached(str(_resolve_dir(path)))


@lru_cache(maxsize=16)
def _load_cached(root: str) -> "District":
    return District(Path(root))


def clear_cache() -> None:
    """Forget every loaded district (the next :func:`load_district` re-reads the files)."""
    _load_cached.cache_clear()
