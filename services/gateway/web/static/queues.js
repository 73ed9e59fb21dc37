// 指挥中心 work queues (GET /api/queues): live counts, each item one click from its decision.
// Case decisions go through actions.js (the case's allowed_actions, with the version it saw);
// a dispute is decided with its owner; an operation with a silent department gets an update.
const QUEUE_ORDER = ["extensions", "parks", "returns", "disputes", "overdue", "escalations", "silent"];
let queueData = null, currentQueue = "extensions";

let unitNames = {};

async function refreshQueues() {
  if (!Object.keys(unitNames).length) for (const unit of await unitOptions()) unitNames[unit.id] = unit.name;
  queueData = (await Api.call("/api/queues")).queues;
  const counts = QUEUE_ORDER.map(name => {
    const queue = queueData[name];
    const button = el("button", {type: "button", "data-queue": name, class: name === currentQueue ? "active" : ""},
      queue.label, el("span", {class: "count"}, String(queue.count)));
    button.setAttribute("role", "tab");
    button.setAttribute("aria-selected", String(name === currentQueue));
    button.addEventListener("click", () => { currentQueue = name; drawQueues(); });
    return button;
  });
  document.querySelector("#queue-counts").replaceChildren(...counts);
  drawQueues();
}

function drawQueues() {
  for (const button of document.querySelectorAll("#queue-counts button")) {
    button.classList.toggle("active", button.dataset.queue === currentQueue);
    button.setAttribute("aria-selected", String(button.dataset.queue === currentQueue));
  }
  const queue = queueData[currentQueue];
  const items = queue.items.map(item => currentQueue === "disputes" ? disputeCard(item)
    : currentQueue === "silent" ? silentCard(item) : caseCard(item));
  document.querySelector("#queue-items").replaceChildren(
    ...(items.length ? items : [el("li", {class: "muted"}, `「${queue.label}」暂无待办`)]));
}

function caseCard(item) {
  const pending = (item.extensions || []).find(e => e.state === "pending");
  const park = item.park && item.park.state === "requested" ? item.park : null;
  return el("li", {class: `card ${lateness(item)}`, "data-case": item.case_id, "data-version": String(item.version)},
    el("h3", {}, `${item.class_name || item.class_code} `, el("small", {}, item.case_id)),
    el("p", {}, `${item.unit_name || item.unit_id} · ${item.state_label} · 时限 ${Api.localTime(item.deadline)} · ${countdown(item)}`),
    pending ? el("p", {}, `延期申请：${pending.extra}，原因：${pending.reason}（需「${pending.required_role}」审批）`) : null,
    park ? el("p", {}, `挂账申请：${park.reason}`) : null,
    item.return_count ? el("p", {}, `已回退 ${item.return_count} 次`) : null,
    el("div", {class: "actions"}, ...actionButtons(item, queueDone)));
}

function disputeCard(item) {
  const button = el("button", {type: "button", class: "action", "data-action": "decide_dispute"}, "裁定权属");
  button.addEventListener("click", () => decideDispute(item));
  return el("li", {class: "card warn", "data-dispute": item._id},
    el("h3", {}, "权属争议 ", el("small", {}, item._id)),
    el("p", {}, `案件 ${(item.case_ids || [item.case_id]).join("、")} · 涉及 ${(item.units || []).map(u => unitNames[u] || u).join("、")}` +
      ` · 先行处置 ${unitNames[item.interim_owner] || item.interim_owner || "—"}`),
    el("p", {}, `裁定层级 ${item.level || "—"} · 期限 ${Api.localTime(item.deadline)}`),
    el("div", {class: "actions"}, button));
}

function silentCard(item) {
  const button = el("button", {type: "button", class: "action", "data-action": "update_operation"}, "催办（发送更新）");
  button.addEventListener("click", () => remindOperation(item));
  return el("li", {class: "card late", "data-operation": item.operation_id},
    el("h3", {}, "联合行动 ", el("small", {}, item.operation_id)),
    el("p", {}, `案件 ${item.case_id || "—"} · 牵头 ${unitNames[item.lead_unit] || item.lead_unit || "—"} · ${item.address || ""}`),
    el("p", {}, `未响应部门：${item.silent_departments.map(d => DEPT_NAMES[d] || d).join("、")}`),
    el("div", {class: "actions"}, button));
}

function simpleDialog(title, fields, submit) {
  const message = el("p", {class: "error", role: "alert"});
  const form = el("form", {method: "dialog"}, el("h3", {}, title), ...fields, message,
    el("p", {class: "buttons"}, el("button", {type: "submit", class: "primary"}, "确定"),
      el("button", {type: "button", class: "cancel"}, "取消")));
  const dialog = el("dialog", {class: "action-dialog"}, form);
  dialog.setAttribute("aria-label", title);
  document.body.append(dialog);
  const close = () => { dialog.close(); dialog.remove(); };
  form.querySelector(".cancel").addEventListener("click", close);
  form.addEventListener("submit", async event => {
    event.preventDefault();
    try { await submit(form); close(); } catch (error) {
      if (error.status === 409) { close(); queueDone(null, `${title}未执行：${error.message}。已重新载入。`); }
      else message.textContent = `${title}失败：${error.message}`;
    }
  });
  dialog.showModal();
  form.querySelector("input, select").focus();
}

async function decideDispute(item) {
  const units = await unitOptions();
  const candidates = units.filter(u => !item.units || !item.units.length || item.units.includes(u.id));
  simpleDialog(`裁定权属 · ${item._id}`, [
    el("p", {}, el("label", {htmlFor: "dispute-owner"}, "责任单位 *"),
      el("select", {id: "dispute-owner", name: "owner_unit", required: true},
        ...(candidates.length ? candidates : units).map(u => el("option", {value: u.id}, u.name)))),
    el("p", {}, el("label", {htmlFor: "dispute-note"}, "裁定说明"), el("input", {id: "dispute-note", name: "note", type: "text"})),
  ], async form => {
    await Api.call(`/api/intake/disputes/${encodeURIComponent(item._id)}/decision`, {method: "POST", json: {
      owner_unit: form.querySelector("[name=owner_unit]").value, note: form.querySelector("[name=note]").value}});
    queueDone(null, `权属已裁定：${item._id}`);
  });
}

function remindOperation(item) {
  simpleDialog(`催办 · ${item.operation_id}`, [
    el("p", {}, el("label", {htmlFor: "remind-note"}, "催办内容 *"),
      el("input", {id: "remind-note", name: "note", type: "text", required: true, value: "请尽快答复并到场报到"})),
  ], async form => {
    await Api.call(`/api/operations/${encodeURIComponent(item.operation_id)}/updates`, {method: "POST", json: {
      note: form.querySelector("[name=note]").value, departments: item.silent_departments}});
    queueDone(null, `已催办：${item.operation_id}`);
  });
}

async function queueDone(updated, text) {
  document.querySelector("#queue-notice").textContent = text;
  await refreshQueues();
}
