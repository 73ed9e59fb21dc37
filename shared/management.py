"""The platform's one client of the RabbitMQ management API (queues, users, permissions,
shovel parameters).

``shared/ops.py`` (dcgctl), ``shared/broker_users.py`` (department and platform users) and
``shared/health.py`` (queue conditions in ``/health``) all use this class; none talks to the
management API on its own.
"""
from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit

import requests

from .messaging.connection import first_uri, node_uris, plain_amqp


def vhost_of(amqp_uri: str) -> str:
    """The virtual host named by an AMQP URI ("/" when it names none)."""
    path = urlsplit(plain_amqp(first_uri(amqp_uri))).path
    return unquote(path[1:]) if path and path != "/" else "/"


class Management:
    """``Management.from_config(config)``: the URL, user and password from RABBIT_MANAGEMENT_*,
    the vhost from AMQP_URI.

    On a cluster RABBIT_MANAGEMENT_URL lists every node's management URL (``;`` or ``,``): a
    call goes to the node that answered last, and to the next one when that node cannot be
    reached (every node of a cluster answers for all of it)."""

    def __init__(self, url: str, user: str, password: str, vhost: str = "/"):
        self.bases = [base.rstrip("/") for base in node_uris(url)] or [str(url).rstrip("/")]
        self.auth = (user, password)
        self.vhost = vhost

    @property
    def base(self) -> str:
        return self.bases[0]

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        """One HTTP call, to the first node that can be reached (it becomes the first)."""
        for attempt, base in enumerate(list(self.bases)):
            try:
                answer = requests.request(method, f"{base}/api/{path}", auth=self.auth, **kwargs)
            except requests.ConnectionError:
                if attempt == len(self.bases) - 1:
                    raise
                continue
            if attempt:                       # remember the node that answered
                self.bases.remove(base)
                self.bases.insert(0, base)
            return answer
        raise requests.ConnectionError("no management URL")

    @classmethod
    def from_config(cls, config: dict, vhost: str | None = None) -> "Management":
        return cls(str(config.get("RABBIT_MANAGEMENT_URL") or "http://127.0.0.1:15672"),
                   str(config.get("RABBIT_MANAGEMENT_USER") or "guest"),
                   str(config.get("RABBIT_MANAGEMENT_PASSWORD") or "guest"),
                   vhost or vhost_of(str(config["AMQP_URI"])))

    @property
    def v(self) -> str:
        return quote(self.vhost, safe="")

    def url(self, path: str) -> str:
        return f"{self.base}/api/{path}"

    # -- plain calls: raise on any error status
    def get(self, path, timeout: float = 15, **params):
        answer = self._request("GET", path, params=params or None, timeout=timeout)
        answer.raise_for_status()
        return answer.json()

    def post(self, path, body):
        answer = self._request("POST", path, json=body, timeout=30)
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def delete(self, path):
        answer = self._request("DELETE", path, timeout=30)
        answer.raise_for_status()

    # -- calls where "not there" is an answer (None), not an error
    def _call(self, method: str, path: str, body=None, ok=(200, 201, 204)):
        answer = self._request(method, path, json=body, timeout=15)
        if answer.status_code == 404 and method in ("GET", "DELETE"):
            return None
        if answer.status_code not in ok:
            raise RuntimeError(f"management API {method} /api/{path}: {answer.status_code} {answer.text[:300]}")
        return answer.json() if answer.content and method == "GET" else None

    # -- queues
    def queues(self, timeout: float = 15) -> list[dict]:
        return self.get(f"queues/{self.v}", timeout=timeout)

    # -- users and permissions
    def user(self, name):
        return self._call("GET", f"users/{quote(name, safe='')}")

    def users(self):
        return self._call("GET", "users") or []

    def put_user(self, name, password, tags=""):
        self._call("PUT", f"users/{quote(name, safe='')}", {"password": password, "tags": tags})

    def delete_user(self, name):
        self._call("DELETE", f"users/{quote(name, safe='')}")

    def put_vhost(self, vhost):
        self._call("PUT", f"vhosts/{quote(vhost, safe='')}")

    def permissions(self, vhost, name):
        return self._call("GET", f"permissions/{quote(vhost, safe='')}/{quote(name, safe='')}")

    def put_permissions(self, vhost, name, perms):
        self._call("PUT", f"permissions/{quote(vhost, safe='')}/{quote(name, safe='')}", perms)

    def topic_permissions(self, vhost, name):
        return self._call("GET", f"topic-permissions/{quote(vhost, safe='')}/{quote(name, safe='')}") or []

    def put_topic_permissions(self, vhost, name, perms):
        self._call("PUT", f"topic-permissions/{quote(vhost, safe='')}/{quote(name, safe='')}", perms)

    def delete_topic_permissions(self, vhost, name):
        self._call("DELETE", f"topic-permissions/{quote(vhost, safe='')}/{quote(name, safe='')}")

    # -- runtime parameters (dynamic shovels: component "shovel") and their live state
    def queue(self, name):
        """One queue of this vhost (None when it does not exist)."""
        return self._call("GET", f"queues/{self.v}/{quote(name, safe='')}")

    def parameters(self, component):
        return self._call("GET", f"parameters/{quote(component, safe='')}/{self.v}") or []

    def put_parameter(self, component, name, value):
        self._call("PUT", f"parameters/{quote(component, safe='')}/{self.v}/{quote(name, safe='')}",
                   {"value": value})

    def delete_parameter(self, component, name):
        self._call("DELETE", f"parameters/{quote(component, safe='')}/{self.v}/{quote(name, safe='')}")

    def has_shovel_plugin(self) -> bool:
        """Whether this broker runs the shovel management plugin (``/api/shovels`` answers)."""
        return self._request("GET", "shovels", timeout=10).status_code == 200

    def shovels(self):
        """Live shovels of this vhost (the rabbitmq_shovel_management plugin)."""
        return self._call("GET", f"shovels/{self.v}") or []
