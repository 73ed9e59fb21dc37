"""dcgctl beside make run finds the embedded store with the password make run keeps."""
import json

from shared import config


def test_a_command_beside_make_run_uses_the_kept_store_password(tmp_path, monkeypatch):
    secret = tmp_path / "store.json"
    monkeypatch.setattr(config, "STORE_SECRET", secret)
    assert config.local_store_uri({}) is None                       # no make run here: the config's URI
    secret.write_text(json.dumps({"user": "dcg", "password": "p@ss/word"}), encoding="utf-8")
    uri = config.local_store_uri({})
    assert uri.startswith("mongodb://dcg:p%40ss%2Fword@127.0.0.1:27017/") and "authSource=admin" in uri
    assert config.local_store_uri({"MONGO_URI": "mongodb://elsewhere"}) is None   # MONGO_URI wins
