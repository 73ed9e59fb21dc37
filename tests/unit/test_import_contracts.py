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
    rules = {f"services.{path.parent.name}.rules" for path in (ROOT / "services").glob("*/rules.py")}
    rules |= {f"services.enforcement_coordination.{path.stem}"
              for path in (ROOT / "services" / "enforcement_coordination").glob("rules_*.py")}
    assert rules <= listed("importlinter:contract:rules-are-pure", "source_modules")
