"""Platform configuration: one YAML file, ``${VAR:default}`` placeholders from the environment.

The same file feeds nameko (``AMQP_URI``, ``max_workers`` …) and our own extensions.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "config" / "platform.yaml"

_PLACEHOLDER = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<default>[^}]*))?\}")


def _expand(value, environ):
    if isinstance(value, str):
        def repl(match):
            name, default = match.group("name"), match.group("default")
            if name in environ:
                return environ[name]
            if default is None:
                raise KeyError(f"configuration needs the environment variable {name}")
            return default

        expanded = _PLACEHOLDER.sub(repl, value)
        if expanded != value:
            # A placeholder that filled the whole value is typed the way YAML would type it.
            return yaml.safe_load(expanded) if expanded.strip() else ""
        return expanded
    if isinstance(value, dict):
        return {key: _expand(item, environ) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand(item, environ) for item in value]
    return value


def load_config(path: str | os.PathLike | None = None, environ=None, **overrides) -> dict:
    """Read the platform YAML (``PLATFORM_CONFIG`` or config/platform.yaml) with env overrides."""
    environ = os.environ if environ is None else environ
    path = Path(path or environ.get("PLATFORM_CONFIG") or DEFAULT_CONFIG)
    with open(path, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle) or {}
    config = _expand(raw, environ)
    config.update(overrides)
    return config


STORE_SECRET = ROOT / "var" / "secrets" / "store.json"


def embedded_store_uri(password: str, port: int = 27017) -> str:
    """The embedded store of ``make run`` (127.0.0.1, SCRAM user ``dcg``; docs/security.md)."""
    from urllib.parse import quote
    return (f"mongodb://dcg:{quote(password, safe='')}@127.0.0.1:{port}/?directConnection=true"
            "&authSource=admin&authMechanism=SCRAM-SHA-256")


def local_store_uri(environ=None) -> str | None:
    """For a command run beside ``make run`` (dcgctl): the embedded store with the password kept
    in var/secrets/store.json, when MONGO_URI is not set and that file exists."""
    environ = os.environ if environ is None else environ
    if environ.get("MONGO_URI") or not STORE_SECRET.is_file():
        return None
    import json
    secret = json.loads(STORE_SECRET.read_text(encoding="utf-8"))
    return embedded_store_uri(secret["password"], int(environ.get("EMBEDDED_STORE_PORT", 27017)))


def retry_delays(config: dict) -> list[int]:
    raw = config.get("RETRY_DELAYS_MS", "")
    if isinstance(raw, (int, float)):
        return [int(raw)]
    return [int(part) for part in str(raw).split(",") if part.strip()]


def database_name(config: dict, service: str) -> str:
    return f"{config.get('DB_PREFIX', 'dcg_')}{service}"
