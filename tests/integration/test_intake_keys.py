"""One API-key store (issue 15): an Open311 app's key is a gateway account (role citizen), made
by the accounts command as `make run` makes the demo app's, verified by the gateway, which tells
intake which app posted. The old intake key command only points to the new one."""
import os
import subprocess
import sys
from pathlib import Path

import requests

from services.gateway import auth
from tests.integration.intake_support import INSIDE, start

ROOT = Path(__file__).resolve().parents[2]


def run(test_env, module, *args, code=0):
    env = {**os.environ, **test_env, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == code, done.stderr
    return done.stdout.strip() if code == 0 else done.stderr


def test_an_open311_app_is_a_gateway_account_made_by_ensure(test_env, container_factory, config, db, tmp_path):
    accounts = db("gateway").accounts
    key_file = tmp_path / "open311-demo.key"
    first = run(test_env, "services.gateway.accounts", "ensure", "--role", "citizen", "--name", "演示应用",
                "--file", str(key_file))
    assert key_file.read_text().strip() == first and oct(key_file.stat().st_mode)[-3:] == "600"
    assert auth.authenticate(accounts, first).role == "citizen"
    assert run(test_env, "services.gateway.accounts", "ensure", "--role", "citizen", "--name", "演示应用",
               "--file", str(key_file)) == first                                       # reused
    assert first not in str(list(accounts.find({})))                                    # only a hash is kept

    running = start(container_factory, config, gateway=True)
    form = {"api_key": first, "service_code": "E0101", "lat": INSIDE["lat"], "long": INSIDE["lon"],
            "attribute[area_m2]": "2", "description": "一个密钥库"}
    answer = requests.post(f"{running.url}/open311/v2/requests.json", data=form, timeout=20)
    assert answer.status_code == 201, answer.text
    assert "api_keys" not in db("intake").list_collection_names()                      # one key store
    by_header = requests.post(f"{running.url}/open311/v2/requests.json", headers={"X-Api-Key": first},
                              data={k: v for k, v in form.items() if k != "api_key"}, timeout=20)
    assert by_header.status_code == 201, by_header.text

    key_id = first.split("_")[1]
    assert run(test_env, "services.gateway.accounts", "revoke", key_id) == f"revoked {key_id}"
    revoked = requests.post(f"{running.url}/open311/v2/requests.json", data=form, timeout=20)
    assert revoked.status_code == 403 and revoked.json()[0]["code"] == 403
    replaced = run(test_env, "services.gateway.accounts", "ensure", "--role", "citizen", "--name", "演示应用",
                   "--file", str(key_file))                                            # revoked → a new one
    assert replaced != first
    leader = auth.new_key(accounts, "区领导", "leader")
    assert requests.post(f"{running.url}/open311/v2/requests.json", data=dict(form, api_key=leader),
                         timeout=20).status_code == 403                                # read-only


def test_the_old_intake_key_command_points_to_the_accounts_command(test_env):
    message = run(test_env, "services.intake.keys", "create", "--name", "demo", code=2)
    assert "services.gateway.accounts create --role citizen" in message
