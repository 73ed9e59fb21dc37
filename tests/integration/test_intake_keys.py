"""The Open311 key command, run as `make run` would run it, against the real store: a key is
printed once, only its hash is stored, `ensure` reuses a valid key file, `revoke` ends it."""
import os
import subprocess
import sys
from pathlib import Path

from services.intake import keys

ROOT = Path(__file__).resolve().parents[2]


def run(test_env, *args):
    env = {**os.environ, **test_env, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "services.intake.keys", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_create_ensure_list_revoke(test_env, config, db, tmp_path):
    collection = db("intake").api_keys
    key = run(test_env, "create", "--name", "demo")
    assert key.startswith("dcg311_") and keys.verify(collection, key)["name"] == "demo"
    stored = collection.find_one({})
    assert key not in str(stored) and stored["hash"] == keys.key_hash(key)      # only the hash is kept

    key_file = tmp_path / "open311-demo.key"
    first = run(test_env, "ensure", "--name", "demo", "--file", str(key_file))
    assert key_file.read_text().strip() == first and oct(key_file.stat().st_mode)[-3:] == "600"
    assert run(test_env, "ensure", "--name", "demo", "--file", str(key_file)) == first     # reused
    listing = run(test_env, "list")
    assert listing.count("demo") == 2 and "active" in listing and first not in listing

    record = keys.verify(collection, first)
    assert run(test_env, "revoke", "--id", record["_id"]) == f"revoked {record['_id']}"
    assert keys.verify(collection, first) is None
    replaced = run(test_env, "ensure", "--name", "demo", "--file", str(key_file))        # revoked → a new one
    assert replaced != first and keys.verify(collection, replaced)
    for bad in (None, "", "dcg311_unknown", "x" * 500, 42):
        assert keys.verify(collection, bad) is None
