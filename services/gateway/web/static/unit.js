// 处置单位 "我的案件": the unit's open cases by deadline, a live countdown and lateness colour,
// and exactly the actions the gateway allows (accept, return, extension, parking, stage reports,
// feedback with a photo), plus the whistle. Live by Server-Sent Events, no polling.
const DEPARTMENTS = {police: "公安", environment: "生态环境", transport: "交通", construction: "住建", planning: "规划", market: "市场监管"};
let me = null, cases = [];

async function start() {
  me = await Api.call("/api/me");
  document.querySelector("#me").textContent = `${me.name}（${me.role_name}）`;
  document.querySelector("#logout").hidden = false;
  document.querySelector("#login").hidden = true;
  document.querySelector("#whistle-form").closest("section").hidden = !!me.read_only;   // the leader reads only
  document.querySelector("#app").hidden = false;
  const box = document.querySelector("#whistle-departments");
  if (!box.children.length || box.children.length === 1) {
    for (const [id, name] of Object.entries(DEPARTMENTS)) {
      box.append(el("label", {}, el("input", {type: "checkbox", value: id, name: "dept"}), ` ${name}`));
    }
  }
  await refresh();
  Live.on(debounce(refresh, 300));
  setInterval(drawCountdowns, 30000);          // the countdown ticks; the data comes by push
}

async function refresh() {
  const open = [];
  for (const state of ["dispatched", "accepted", "parked", "feedback_given"]) {
    const body = await Api.call(`/api/cases?state=${state}&per_page=100`);
    open.push(...(body.items || []));
  }
  cases = open.sort((a, b) => new Date(a.deadline_utc || a.deadline) - new Date(b.deadline_utc || b.deadline));
  document.querySelector("#open-count").textContent = cases.length;
  document.querySelector("#my-cases").replaceChildren(...cases.map(card));
  document.querySelector("#whistle-case").replaceChildren(...cases.map(item =>
    el("option", {value: item.case_id}, `${item.case_id} ${item.class_name || ""}`)));
  document.querySelector("#updated").textContent = new Date().toLocaleTimeString("zh-CN", {hour12: false});
}

function card(item) {
  const node = el("li", {class: `card ${lateness(item)}`, "data-case": item.case_id},
    el("h3", {}, `${item.class_name || item.class_code} `, el("small", {}, item.case_id)),
    el("p", {}, item.address || ""),
    el("p", {}, el("b", {}, item.state_label || item.state), " · 时限 ", Api.localTime(item.deadline), " · ",
      el("span", {class: "countdown"}, countdown(item))),
    el("div", {class: "actions"}, ...actionButtons(item, done)));
  return node;
}

function drawCountdowns() {
  for (const item of cases) {
    const node = document.querySelector(`#my-cases [data-case='${item.case_id}']`);
    if (!node) continue;
    node.querySelector(".countdown").textContent = countdown(item);
    node.className = `card ${lateness(item)}`;
  }
}

async function done(updated, text) {
  document.querySelector("#notice").textContent = text;
  await refresh();
}

async function whistle(event) {
  event.preventDefault();
  const result = document.querySelector("#whistle-result");
  const departments = [...document.querySelectorAll("#whistle-departments input:checked")].map(i => i.value);
  try {
    const body = await Api.call("/api/operations", {method: "POST", json: {
      case_id: document.querySelector("#whistle-case").value, departments, trigger: "whistle",
      request_id: `w-${Date.now()}`, reason: document.querySelector("#whistle-note").value || "街道吹哨，请相关部门到场"}});
    const op = body.operation || body;
    result.textContent = `已吹哨：联合行动 ${op.operation_id || op._id || ""}`;
  } catch (error) { result.textContent = "吹哨失败：" + error.message; }
}

document.querySelector("#logout").addEventListener("click", () => { localStorage.removeItem("dcg_api_key"); location.reload(); });
document.querySelector("#whistle-form").addEventListener("submit", whistle);
bindLogin(start);
