"""The store on a MongoDB replica set: the client is built with w=majority, retryable writes and
reads that see the service's own writes (primary, majority read concern) whenever MONGO_URI names a
replica set, unless the URI itself says otherwise; a single server (the embedded store) is left as
it was. (No mongod runs on this machine: these check the client's settings, not a replica set.)"""
from pymongo import ReadPreference

from shared.storage import client_options, mongo_client

RS = "mongodb://dispatch:pw@mongo-1:27017,mongo-2:27017,mongo-3:27017/?authSource=admin&replicaSet=rs0"


def test_a_replica_set_client_writes_to_a_majority_retries_and_reads_its_own_writes():
    client = mongo_client(RS)
    try:
        assert client.write_concern.document == {"w": "majority"}
        assert client.options.retry_writes is True
        assert client.read_concern.level == "majority"
        assert client.read_preference == ReadPreference.PRIMARY
        database = client["dcg_dispatch"]                     # what every service's collections inherit
        assert database.cases.write_concern.document == {"w": "majority"}
        assert database.cases.read_concern.level == "majority"
    finally:
        client.close()


def test_the_uri_may_choose_otherwise():
    client = mongo_client(RS + "&w=2&readConcernLevel=local")
    try:
        assert client.write_concern.document == {"w": 2}
        assert client.read_concern.level == "local"
        assert client.options.retry_writes is True
    finally:
        client.close()


def test_a_single_server_is_left_as_it_was():
    assert client_options("mongodb://127.0.0.1:27017/?directConnection=true") == {}
    client = mongo_client("mongodb://127.0.0.1:27017/?directConnection=true")
    try:
        assert client.write_concern.document == {}
        assert client.read_concern.level is None
    finally:
        client.close()


def test_a_command_the_store_never_answers_fails_after_a_minute_unless_the_uri_says_otherwise():
    """A store killed mid-command and restarted may never answer it: without a socket timeout the
    worker waiting on it hangs for good (seen in `make chaos-cluster`: scoring stopped acking)."""
    for uri, seconds in (("mongodb://127.0.0.1:27017/?directConnection=true", 60.0),
                         (RS, 60.0), (RS + "&socketTimeoutMS=5000", 5.0)):
        client = mongo_client(uri)
        try:
            assert client.options.pool_options.socket_timeout == seconds
        finally:
            client.close()
