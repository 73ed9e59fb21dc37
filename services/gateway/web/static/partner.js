// 联动部门联络员: the operations the department is asked to join; accept or reject with a reason,
// check in (报到, with the position if the browser gives it), action updates, the disposition —
// all through the HTTP reply path (POST /api/operations/<id>/replies, the department contract's envelope).
const STAGES = {requested: "待答复", renotified: "再次通知", accepted: "已接受", rejected: "已拒绝", on_site: "已报到",
  acting: "处置中", disposed: "已处置", cancelled: "已解除"};
let me = null;

async function start() {
  me = await Api.call("/api/me");
  document.querySelector("#me").textContent = `${me.name}（${me.role_name}）`;
  document.querySelector("#department").textContent = me.department || "";
  document.querySelector("#logout").hidden = false;
  document.querySelector("#login").hidden = true;
  document.querySelector("#app").hidden = false;
  await refresh();
  Live.on(debounce(() => refresh().catch(() => {}), 300));
}

async function refresh() {
  const body = await Api.call("/api/operations?state=open&per_page=50");
  const items = body.items || body.operations || [];
  document.querySelector("#operations").replaceChildren(...(items.length ? items.map(card)
    : [el("li", {class: "muted"}, "暂无需要参与的联合行动")]));
}

function card(op) {
  const id = op.operation_id || op._id, mine = (op.departments || {})[me.department] || {};
  const state = mine.state || "requested";
  const buttons = [];
  const add = (label, handler) => { const b = el("button", {type: "button", class: "action"}, label); b.addEventListener("click", handler); buttons.push(b); };
  if (["requested", "renotified"].includes(state)) {
    add("接受", () => reply(id, "Ack", {status: "accepted", reason: ""}, "已接受"));
    add("拒绝", () => ask(id, "拒绝原因", note => reply(id, "Ack", {status: "rejected", reason: note}, "已拒绝")));
  }
  if (["accepted", "requested", "renotified"].includes(state)) add("到场报到", () => checkIn(id));
  if (["on_site", "acting", "accepted"].includes(state)) {
    add("处置进展", () => ask(id, "进展说明", note => reply(id, "Update", {stage: "action", note}, "已报告进展")));
    add("处置完毕", () => ask(id, "处置结果", note => reply(id, "Update", {stage: "disposition", note}, "已报告处置结果")));
  }
  return el("li", {class: "card", "data-operation": id},
    el("h3", {}, `联合行动 `, el("small", {}, id)),
    el("p", {}, `案件 ${op.case_id || "—"} · ${op.address || ""} · 牵头 ${op.lead_unit || "—"}`),
    el("p", {}, "本部门：", el("b", {"data-state": state}, STAGES[state] || mine.state_name || state)),
    el("div", {class: "actions"}, ...buttons));
}

function ask(id, label, then) {
  const message = el("p", {class: "error", role: "alert"});
  const input = el("input", {id: "partner-note", type: "text", required: true});
  const form = el("form", {method: "dialog"}, el("h3", {}, `${label} · ${id}`),
    el("p", {}, el("label", {htmlFor: "partner-note"}, `${label} *`), input), message,
    el("p", {class: "buttons"}, el("button", {type: "submit"}, "确定"), el("button", {type: "button", class: "cancel"}, "取消")));
  const dialog = el("dialog", {class: "action-dialog"}, form);
  dialog.setAttribute("aria-label", label);
  document.body.append(dialog);
  const close = () => { dialog.close(); dialog.remove(); };
  form.querySelector(".cancel").addEventListener("click", close);
  form.addEventListener("submit", async event => {
    event.preventDefault();
    try { await then(input.value.trim()); close(); } catch (error) { message.textContent = error.message; }
  });
  dialog.showModal();
  input.focus();
}

function checkIn(id) {
  const send = location => reply(id, "Update", {stage: "checkin", note: "已到达现场报到", ...(location ? {location} : {})}, "已报到");
  if (!navigator.geolocation) return send(null);
  navigator.geolocation.getCurrentPosition(
    position => send({lon: Number(position.coords.longitude.toFixed(6)), lat: Number(position.coords.latitude.toFixed(6))}),
    () => send(null), {timeout: 5000});
}

async function reply(id, kind, payload, done) {
  const operation = await Api.call(`/api/operations/${encodeURIComponent(id)}`);
  const mine = ((operation.operation || operation).departments || {})[me.department] || {};
  const sent = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  try {
    await Api.call(`/api/operations/${encodeURIComponent(id)}/replies`, {method: "POST", json: {
      schema_version: "1.1", distribution_id: `${me.department}.${kind.toLowerCase()}.${Date.now()}`,
      sender: me.department, recipients: ["dcg.coordination"], kind, sent_at: sent, expires_at: null,
      incident_id: id, in_reply_to: mine.distribution_id, references: [], payload}});
    document.querySelector("#notice").textContent = `${id}：${done}`;
  } catch (error) {
    document.querySelector("#notice").textContent = `${id}：失败 — ${error.message}`;
  }
  await refresh();
}

document.querySelector("#logout").addEventListener("click", () => { localStorage.removeItem("dcg_api_key"); location.reload(); });
bindLogin(start);
