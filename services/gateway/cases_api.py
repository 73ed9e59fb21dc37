"""Case actions, lists and timelines over HTTP (issue: dispatch; roles: services/gateway/auth.py).

- ``POST /api/cases/<id>/actions/<action>``  accept, return, request-extension, decide-extension,
  request-park, decide-park, unpark, feedback, verify, set-urgency. The body carries
  ``expected_version`` (the case version the caller saw: a stale one gets 409) and the action's
  own fields. **Who acts comes from the API key**, never from the body (``actor``, ``actor_unit``
  and ``role`` in a body are ignored): a unit account acts for its unit and only on a case
  assigned to it (another unit's case: 403); the command centre (operator, admin) may do a unit's
  action for the unit the case is assigned to (代办) and approves with its rank (operator →
  ``centre``, admin → ``leader``); the inspector verifies under its person id. The leader is
  read-only.
- ``GET /api/cases/<id>/timeline``  every event of the case, from the report to the close
  (joint-operation entries from coordination included),
  with actor, time (Asia/Shanghai) and reason, in one call. A unit: only its own case (else 404).
- ``GET /api/cases?state=&unit=&grid=&class=&since=&until=&overdue=&page=&per_page=``
  A unit account always gets its own unit's cases (``unit`` is ignored).
"""
from __future__ import annotations

from datetime import datetime, timezone

from marshmallow import ValidationError
from nameko.web.handlers import http

from shared.contracts.api.dispatch import ACTION_SCHEMAS, CaseQuery, action_name
from shared.refdata import load_district

from .access import Access, readers_and
from .allowed import CASE_ACTION, case_action_denial, with_allowed
from .auth import (CASE_ACTION_ROLES, IDENTITY_FIELDS, PERSON_ID, Forbidden, NotFound, case_action_identity,
                   forbidden_role)
from .http import BadRequest, PageQuery, call, endpoint, json_body, json_response, load, path_id

from .http import ok_response as _answer  # noqa: E402  (a success as it is; errors: http.ERRORS)


def action_body_schema(name: str):
    """The body a client sends for an action: dispatch's schema without the identity fields,
    which the gateway fills from the API key (also what the OpenAPI document shows)."""
    schema_cls = ACTION_SCHEMAS[name]
    return schema_cls(exclude=[key for key in IDENTITY_FIELDS if key in schema_cls._declared_fields])


def _moment(value) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return None


def _intake_entries(registered: dict) -> list[dict]:
    """The report and the registration from intake's record (the reporter's phone is left out)."""
    report = registered.get("report") or {}
    case = registered.get("case") or {}
    reporter = (report.get("reporter") or {}).get("name") or report.get("inspector_id") \
        or report.get("channel") or "reporter"
    received = registered.get("received_at")
    entries = [{"type": "report_received", "label": "受理", "at": received, "actor": reporter,
                "reason": report.get("description", ""), "source": "intake",
                "channel": report.get("channel"), "report_id": registered.get("_id")}]
    if registered.get("case_id"):
        entries.append({"type": "case_registered", "label": "立案",
                        "at": case.get("registered_at") or received, "actor": "intake",
                        "reason": "符合立案标准", "source": "intake", "class_code": case.get("class_code"),
                        "grid_code": case.get("grid_code"), "owner_unit": case.get("owner_unit")})
    for entry in registered.get("history") or registered.get("timeline") or []:
        if isinstance(entry, dict) and entry.get("at") and entry.get("type") not in (
                "report_received", "case_registered"):
            entries.append(dict(entry, source="intake"))
    return entries


# what each endpoint acts on, and the relation each role needs (services/gateway/access.py);
# CASE_ACTION (the actions) is declared beside the one check of an action, services/gateway/allowed.py
CASE_READ = Access("case", readers_and(unit="owning_unit"), label="案件")
CASE_LIST = Access(None, readers_and(unit="owning_unit"))          # a unit: filtered to its own


class CasesApi:
    """HTTP entrypoints mixed into GatewayService (services/gateway/service.py)."""

    def _visible_case(self, principal, case_id) -> dict | None:
        """Dispatch's view of the case; a unit that may not see it gets 404, as if it did not exist."""
        path_id(case_id, "案件")
        case = call(self.dispatch, "get_case", case_id)
        if not principal.sees_all:
            principal.check(case, case_id)
        return case

    @http("POST", "/api/cases/<string:case_id>/actions/<string:action>")
    @endpoint(CASE_ACTION)
    def post_case_action(self, request, principal, case_id, action):
        name = action_name(action)
        if name is None:
            raise NotFound(f"没有这个操作 {action[:64]} (unknown action); 可用: "
                           + ", ".join(sorted(a.replace("_", "-") for a in ACTION_SCHEMAS)))
        if principal.role not in CASE_ACTION_ROLES[name]:
            raise forbidden_role(principal)
        path_id(case_id, "案件")
        case = principal.check(call(self.dispatch, "get_case", case_id), case_id)   # before the body
        data = principal.fill(json_body(request))
        load(action_body_schema(name), data)
        denial = case_action_denial(principal, name, case)      # the same check allowed_actions lists by
        if isinstance(denial, Forbidden):   # what the state allows: dispatch, after the version (409 first)
            raise denial
        data.update(case_action_identity(principal, name, case))
        result = call(self.dispatch, "act", case_id, name, data)
        if isinstance(result.get("case"), dict):
            result["case"] = with_allowed(principal.principal, result["case"])
        return _answer(result)

    @http("GET", "/api/cases/<string:case_id>/timeline")
    @endpoint(CASE_READ)
    def get_case_timeline(self, request, principal, case_id):
        self._visible_case(principal, case_id)
        district = load_district()
        dispatched = call(self.dispatch, "timeline", case_id)
        try:
            registered = call(self.intake, "get_case", case_id)
            intake_note = None
        except Exception as exc:  # noqa: BLE001 - intake away: show dispatch's copy of the registration
            registered, intake_note = None, f"intake 暂不可用 ({type(exc).__name__})，立案信息取自 dispatch 的副本"
        if registered is None and dispatched is None:
            raise NotFound(f"没有案件 {case_id} (not found)")
        entries = _intake_entries(registered) if registered else []
        if not registered and dispatched:
            entries.append(dispatched["registration"])
        if dispatched:
            entries.extend(dispatched["entries"])
        try:
            entries.extend(call(self.coordination, "timeline_for_case", case_id))
        except Exception as exc:  # noqa: BLE001 - coordination away: the rest of the timeline still shows
            coordination_note = f"coordination 暂不可用 ({type(exc).__name__})，联合执法记录暂缺"
        else:
            coordination_note = None
        dated = [(_moment(entry.get("at")), index, entry) for index, entry in enumerate(entries)]
        dated.sort(key=lambda item: (item[0] or datetime.max.replace(tzinfo=timezone.utc), item[1]))
        timeline = []
        for moment, _, entry in dated:
            entry = dict(entry)
            if moment is not None:
                entry["at"] = district.calendar.to_local(moment).isoformat()
            timeline.append(entry)
        self._name_actors(timeline)
        body = {"case_id": case_id, "state": dispatched["state"] if dispatched else None,
                "version": dispatched["version"] if dispatched else None,
                "timezone": district.calendar.timezone_name, "entries": timeline}
        notes = [note for note in (intake_note, coordination_note) if note]
        if notes:
            body["note"] = "；".join(notes)
        return json_response(body)

    def _name_actors(self, entries: list) -> None:
        """An actor recorded by its account or person id (an inspector's verification) is shown by
        its account's name; the id stays in ``actor_id``."""
        ids = {entry["actor"] for entry in entries
               if isinstance(entry.get("actor"), str) and PERSON_ID.match(entry["actor"])}
        if not ids:
            return
        names = {}
        _index_person_id(self.db.accounts)
        for actor in sorted(ids):       # one equality each (an $or of $in is a scan on the embedded store)
            account = self.db.accounts.find_one({"_id": actor}, {"name": 1}) or \
                self.db.accounts.find_one({"person_id": actor}, {"name": 1})
            if account is not None:
                names[actor] = account["name"]
        for entry in entries:
            if entry.get("actor") in names:
                entry["actor_id"], entry["actor"] = entry["actor"], names[entry["actor"]]

    @http("GET", "/api/cases")
    @endpoint(CASE_LIST)
    def get_cases(self, request, principal):
        filters = request.args.to_dict()
        if principal.role == "unit":
            filters["unit"] = principal.unit_id
        errors = {}
        for schema in (CaseQuery(), PageQuery()):      # dispatch's filters; the gateway's page bounds
            try:
                schema.load(filters)
            except ValidationError as exc:
                errors.update(exc.messages)
        if errors:
            raise BadRequest("输入有误，请检查标出的字段 (invalid input)", errors)
        result = call(self.dispatch, "list_cases", filters)
        if isinstance(result.get("items"), list):
            result["items"] = [with_allowed(principal.principal, item) for item in result["items"]]
        if result.get("status") == "ok" and result.get("per_page"):
            result["pages"] = -(-result["total"] // result["per_page"])
        return _answer(result)


_INDEXED: set = set()


def _index_person_id(accounts) -> None:
    """Accounts by staff number (``person_id``): indexed once per process."""
    if accounts.full_name in _INDEXED:
        return
    try:
        accounts.create_index("person_id")
        _INDEXED.add(accounts.full_name)
    except Exception:  # noqa: BLE001 - the store may be away; the lookup still works
        pass
