"""The architecture holds (.importlinter, checked by import-linter): the services are independent
of each other, the gateway included (they meet only through shared/contracts); shared imports
no service; rules modules do no I/O (no nameko, eventlet, pymongo or messaging)."""
import configparser
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".importlinter"


def contracts() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(CONFIG, encoding="utf-8")
    return parser


def listed(section: str, key: str) -> set[str]:
    return {line.strip() for line in contracts()[section][key].splitlines() if line.strip()}


def test_the_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--config", str(CONFIG), "--no-cache"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Contracts: 3 kept, 0 broken." in result.stdout


def test_every_service_is_in_the_independence_contract():
    """A new service package is covered from its first commit, not left outside the rule."""
    packages = {f"services.{path.parent.name}" for path in (ROOT / "services").glob("*/__init__.py")}
    assert listed("importlinter:contract:services-independent", "modules") == packages


def test_every_rules_module_is_held_pure():
    """Each services/*/rules.py, and every module of its own package a rules.py imports (a split
    by concern), unless that edge is one of the excused ones (ignore_imports)."""
    section = "importlinter:contract:rules-are-pure"
    excused = {edge.split("->")[1].strip() for edge in listed(section, "ignore_imports")} \
        if contracts().has_option(section, "ignore_imports") else set()
    rules = set()
    for path in (ROOT / "services").glob("*/rules.py"):
        package = f"services.{path.parent.name}"
        rules.add(f"{package}.rules")
        for line in path.read_text(encoding="utf-8").splitlines():
            words = line.split()
            if line.startswith("from . import "):
                rules.update(f"{package}.{name.strip(',')}" for name in words[3:] if not name.startswith("#"))
            elif line.startswith("from .") and " import " in line:
                rules.add(package + "." + words[1].lstrip("."))
    assert rules - excused <= listed(section, "source_modules")
