"""GET /api/queues — the command centre's work queues with their counts and items (rules:
services/gateway/queues.py). Every case item carries ``allowed_actions`` for the caller and its
``version`` (the ``expected_version`` its decision sends); the decisions are the existing
endpoints (case actions, the dispute decision, operation updates, POST /api/operations to blow
the whistle for a street)."""
from __future__ import annotations

from nameko.web.handlers import http

from .access import Access, roles_with
from .allowed import with_allowed
from .auth import COMMAND
from .http import call, endpoint, json_response
from .queues import sort_into_queues

QUEUES_READ = Access(None, roles_with("command_centre", COMMAND))
PER_PAGE, MAX_PAGES = 100, 20          # at most 2,000 open cases per state are sorted into queues


def _docs() -> dict:
    from .openapi import Doc
    return {("GET", "/api/queues"): Doc(
        "工作队列 The command centre's work queues: counts and items (cases with allowed_actions)", "cases",
        "延期待审批、挂账待审批、回退待处理、权属争议待裁定、超期与督办、升级案件、联合行动未响应。")}


class QueuesApi:
    """HTTP entrypoint mixed into GatewayService (services/gateway/service.py)."""

    OPENAPI_DOCS = _docs()

    def _all_cases(self, filters: dict) -> list:
        items, page = [], 1
        while page <= MAX_PAGES:
            answer = call(self.dispatch, "list_cases", dict(filters, page=page, per_page=PER_PAGE))
            items += answer.get("items") or []
            if page * PER_PAGE >= answer.get("total", 0):
                break
            page += 1
        return items

    @http("GET", "/api/queues")
    @endpoint(QUEUES_READ)
    def get_queues(self, request, principal):
        return json_response({"queues": self.queues_for(principal.principal)})

    def queues_for(self, principal) -> dict:
        open_cases = self._all_cases({"state": "dispatched"}) + self._all_cases({"state": "accepted"})
        overdue = []
        for summary in self._all_cases({"overdue": True})[:PER_PAGE]:   # with history: escalated or not
            case = call(self.dispatch, "get_case", summary["case_id"])
            if case:
                overdue.append(case)
        disputes = call(self.intake, "list_disputes", "open")
        operations = call(self.coordination, "list_operations", "open", 500)
        queues = sort_into_queues([with_allowed(principal, case) for case in open_cases],
                                  [with_allowed(principal, case) for case in overdue], disputes, operations)
        for queue in queues.values():       # the history is for sorting; the page needs the summary
            for item in queue["items"]:
                item.pop("history", None)
                item.pop("notifications", None)
        return queues

