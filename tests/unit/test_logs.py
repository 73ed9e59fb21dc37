"""Nothing secret in a log line, and log files only for the operators' group (issue 15)."""
import json
import logging
import os
import stat

from shared.logs import JsonFormatter, open_log_file, scrub

GATEWAY_KEY = "dcg_0a1b2c3d4e5f_Zk3v9QxS0mL2pR7tY1uW4eN8bH6cJ5aD"
OPEN311_KEY = "dcg311_q8XyZ-w2_vB9nM3kL7pQ1rS5tU0vW4xY"


def line(message, *args, exc_info=None):
    record = logging.LogRecord("nameko.web.server", logging.INFO, __file__, 1, message, args, exc_info)
    return json.loads(JsonFormatter("gateway").format(record))


def test_access_lines_lose_keys_in_the_query_string_and_headers():
    access = line('127.0.0.1 - - [01/Dec/2026 10:00:00] "%s" 201 312 0.05',
                  f"POST /open311/v2/requests.json?api_key={OPEN311_KEY}&service_code=E0101 HTTP/1.1")
    assert OPEN311_KEY not in access["msg"] and "api_key=***" in access["msg"] and "service_code=E0101" in access["msg"]
    header = line("auth failed for Authorization: Bearer %s", GATEWAY_KEY)
    assert GATEWAY_KEY not in header["msg"] and "Zk3v9" not in header["msg"]


def test_passwords_and_urls_with_credentials_are_scrubbed():
    assert "s3cret" not in scrub("connecting to amqp://dept.police:s3cret@broker:5672/")
    assert "hunter2" not in scrub('{"user": "admin", "password": "hunter2"}')
    assert "hunter2" not in scrub("login?user=admin&password=hunter2")
    assert scrub("GET /api/cases/C-20261201-0001 200") == "GET /api/cases/C-20261201-0001 200"
    assert scrub("store dcg_intake.cases slow") == "store dcg_intake.cases slow"     # a database name stays
    assert scrub("reply routing_key=police.ack dead-lettered") == "reply routing_key=police.ack dead-lettered"
    assert "abc" not in scrub("GET /x?key=abc&page=2") and "page=2" in scrub("GET /x?key=abc&page=2")


def test_tracebacks_are_scrubbed_too():
    try:
        raise ValueError(f"bad key {GATEWAY_KEY}")
    except ValueError:
        import sys
        entry = line("failed", exc_info=sys.exc_info())
    assert GATEWAY_KEY not in entry["exc"]


def test_log_files_are_0640_even_when_they_existed(tmp_path):
    path = tmp_path / "gateway.log"
    path.write_text("")
    os.chmod(path, 0o644)
    with open_log_file(path) as handle:
        handle.write(b"x\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    fresh = tmp_path / "intake.log"
    open_log_file(fresh).close()
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640
