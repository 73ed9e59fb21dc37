// 指挥中心 command-centre page: work queues, map of grids with open cases, case list and
// timeline, joint-operation board, scoreboard. Live by Server-Sent Events (common.js Live), no
// polling. Talks only to this gateway.
const STATE_COLOURS = {ok: "#12b76a", warn: "#f79009", late: "#d92d20", parked: "#7a5af8"};
const DEPT_STATES = {requested: "已通知", renotified: "再次通知", accepted: "已接受", rejected: "已拒绝",
  on_site: "已报到", acting: "处置中", disposed: "已处置", escalated: "已升级", error: "错误", cancelled: "已取消", left: "已退出"};
const stateLabels = {};            // the API's own words for each state (state_label), learnt from the list
const OP_STATES = {open: "进行中", closed: "已结束", cancelled: "已取消"};
const TRIGGERS = {class_rule: "类别规则（城管+N）", whistle: "街道吹哨", escalation: "指挥中心升级"};
const DEPT_NAMES = {police: "公安", environment: "生态环境", transport: "交通", construction: "住建", planning: "规划", market: "市场监管"};
let map, scoreChart, selectedCase = null, me = null;
const COMMAND_ROLES = ["operator", "admin"];

async function start() {
  me = await Api.call("/api/me");
  document.querySelector("#me").textContent = `${me.name}（${me.role_name}）`;
  document.querySelector("#logout").hidden = false;
  document.querySelector("#login").hidden = true;
  const command = COMMAND_ROLES.includes(me.role);     // the command centre works through its queues
  document.querySelector("nav button[data-tab=queues]").hidden = !command;
  document.querySelector(`nav button[data-tab=${command ? "queues" : "cases"}]`).click();
  document.querySelector("#whistle-street-label").hidden = !command;
  document.querySelector("#whistle-form").hidden = !!me.read_only;       // the leader reads only
  document.querySelector("#app").hidden = false;
  const {district, grids} = await Api.call("/api/grids");
  document.querySelector("#district-name").textContent = `${district.name} · 指挥中心`;
  echarts.registerMap("district", grids);
  map = echarts.init(document.querySelector("#map"));
  map.setOption({
    tooltip: {trigger: "item", formatter: p => OneMap.tooltip(p)},
    geo: {map: "district", roam: true, nameProperty: "code", itemStyle: {areaColor: "#eef4fb", borderColor: "#7ba4d6"},
          emphasis: {itemStyle: {areaColor: "#d6e6f7"}, label: {show: false}}},
    series: [{name: "案件", type: "scatter", coordinateSystem: "geo", data: []}],      // the layers: map.js
  });
  await OneMap.setUp(map);
  map.on("click", p => { if (p.seriesName === "案件" && p.data.case_id) showCase(p.data.case_id); });
  fillWhistleDepartments();
  if (me.role === "community") {             // a community representative only reviews
    await setUpReviews();
    document.querySelector("nav button[data-tab=reviews]").click();
    document.querySelector("#updated").textContent = "—";
    return;
  }
  if (command) await fillWhistleStreets();
  await refresh();
  Live.on(debounce(refresh, 300));
}

async function refresh() {
  try {
    const work = [refreshCases(), refreshOperations()];
    if (COMMAND_ROLES.includes(me.role)) work.push(refreshQueues());
    await Promise.all(work);
    document.querySelector("#updated").textContent = new Date().toLocaleTimeString("zh-CN", {hour12: false});
  } catch (error) {
    if (error.status === 401) return logout();
    document.querySelector("#updated").textContent = "更新失败：" + error.message;
  }
}

async function refreshCases() {
  const body = await Api.call("/api/cases?per_page=100");
  const items = body.items || [];
  const open = items.filter(item => item.state !== "closed");
  document.querySelector("#open-count").textContent = open.length;
  for (const item of items) if (item.state_label) stateLabels[item.state] = item.state_label;
  OneMap.show(open);
  const rows = items.map(i => {
    const row = el("tr", {"data-case": i.case_id}, el("td", {}, i.case_id), el("td", {}, i.class_name || i.class_code),
      el("td", {}, i.unit_name || i.unit_id), el("td", {}, i.state_label || i.state), el("td", {}, Api.localTime(i.deadline)));
    row.addEventListener("click", () => showCase(i.case_id));
    return row;
  });
  document.querySelector("#case-table tbody").replaceChildren(...rows);
  if (selectedCase) showCase(selectedCase, true);
}

async function showCase(caseId, quiet) {
  selectedCase = caseId;
  const body = await Api.call(`/api/cases/${encodeURIComponent(caseId)}/timeline`);
  document.querySelector("#case-detail").hidden = false;
  document.querySelector("#case-title").textContent = `案件 ${caseId}（${stateLabels[body.state] || body.state || ""}）`;
  const photos = [];
  const entries = body.entries.map(entry => {
    for (const url of [entry.after_photo, ...(entry.media_urls || [])]) if (url) photos.push(url);
    return el("li", {}, el("span", {class: "when"}, Api.localTime(entry.at) + " "), el("b", {}, entry.label || entry.type),
      ` ${entry.actor ? "· " + entry.actor : ""}${entry.reason ? " · " + entry.reason : ""}`);
  });
  document.querySelector("#timeline").replaceChildren(...entries);
  document.querySelector("#case-photos").replaceChildren(...photos.map(photoNode));
  if (!quiet) document.querySelector("#case-detail").scrollIntoView({behavior: "smooth"});
}

// Photos are shown only from the platform's own /media/ (never fetched from an outside host, which
// would learn who looks at the case); any other address is shown as text.
function platformPhoto(url) {
  try {
    const parsed = new URL(url, location.origin);
    return /^\/media\/[0-9a-f]{32}$/.test(parsed.pathname) ? parsed.pathname : null;
  } catch (error) { return null; }
}
function photoNode(url) {
  const path = platformPhoto(url);
  return path ? el("img", {src: path, alt: "现场照片"}) : el("span", {class: "outside-photo"}, `外部照片地址（未加载）: ${url}`);
}

async function refreshOperations() {
  const body = await Api.call("/api/operations?limit=50");
  const items = body.items || body.operations || [];
  const cards = items.map(op => {
    const departments = Object.entries(op.departments || {}).map(([dept, state]) =>
      el("span", {class: `dept ${state.state}`, "data-department": dept, "data-state": state.state},
        `${DEPT_NAMES[dept] || dept}：${state.state_name || DEPT_STATES[state.state] || state.state}`));
    return el("div", {class: "op", "data-operation": op.operation_id || op._id},
      el("h4", {}, `${op.operation_id || op._id} · ${OP_STATES[op.state] || op.state}`),
      el("div", {}, `案件 ${op.case_id || (op.case || {}).case_id || "—"} · ${TRIGGERS[op.trigger] || op.trigger}` +
        `${op.address ? " · " + op.address : ""}`),
      el("div", {}, ...departments));
  });
  document.querySelector("#board").replaceChildren(...cards);
}

async function fillWhistleStreets() {
  const units = (await unitOptions()).filter(u => ["street", "town"].includes(u.type));
  document.querySelector("#whistle-street").append(...units.map(u => el("option", {value: u.id}, u.name)));
}

function fillWhistleDepartments() {
  const box = document.querySelector("#whistle-departments");
  for (const [id, name] of Object.entries(DEPT_NAMES)) {
    box.append(el("label", {}, el("input", {type: "checkbox", value: id, name: "dept"}), ` ${name}`));
  }
}

async function whistle(event) {
  event.preventDefault();
  const departments = [...document.querySelectorAll("#whistle-departments input:checked")].map(i => i.value);
  const result = document.querySelector("#whistle-result");
  try {
    // A street or town blows the whistle as itself; the command centre blows it for a street it
    // names, or escalates.
    const forStreet = COMMAND_ROLES.includes(me.role) ? document.querySelector("#whistle-street").value : "";
    const street = me.role === "unit" || !!forStreet;
    const body = await Api.call("/api/operations", {method: "POST", json: {
      case_id: document.querySelector("#whistle-case").value.trim(), departments,
      trigger: street ? "whistle" : "escalation", request_id: `w-${Date.now()}`,
      requested_by: forStreet ? {unit_id: forStreet} : street ? {} : {unit_id: "centre.command", person: me.name},
      reason: document.querySelector("#whistle-note").value || (street ? "街道吹哨，请相关部门到场" : "指挥中心升级联合执法")}});
    const op = body.operation || body;
    result.textContent = `已${street ? "吹哨" : "发起"}：联合行动 ${op.operation_id || op._id || ""}`;
    await refreshOperations();
  } catch (error) { result.textContent = "吹哨失败：" + error.message; }
}

async function refreshScores() {
  const unitType = document.querySelector("#unit-type").value;
  const body = await Api.call(`/api/scoring/rankings?unit_type=${unitType}`);
  // the API answers rankings[] per group of unit types, each with its ranked units
  const rows = (body.rankings || []).flatMap(group => group.ranked || []);
  scoreChart = scoreChart || echarts.init(document.querySelector("#score-chart"));
  scoreChart.setOption({grid: {left: 110, right: 20, top: 10, bottom: 20}, tooltip: {},
    xAxis: {type: "value", max: 100}, yAxis: {type: "category", inverse: true, data: rows.map(r => r.name || r.unit_id)},
    series: [{type: "bar", data: rows.map(r => r.composite), itemStyle: {color: "#0b4f8a"}}]});
  document.querySelector("#score-table tbody").replaceChildren(...rows.map(r => el("tr", {"data-unit": r.unit_id},
    el("td", {}, r.rank), el("td", {}, r.name || r.unit_id), el("td", {}, r.composite ?? "—"), el("td", {}, r.due ?? "—"))));
}

async function setUpReviews() {
  // 社区评议: a community representative rates the departments, operators and its own street.
  document.querySelector("nav button[data-tab=reviews]").hidden = false;
  const units = (await Api.call("/api/units")).items.filter(u => ["department", "operator", "street", "town"].includes(u.type));
  document.querySelector("#review-unit").replaceChildren(...units.map(u => el("option", {value: u.id}, u.name)));
  document.querySelector("#review-form").addEventListener("submit", async event => {
    event.preventDefault();
    const result = document.querySelector("#review-result");
    try {
      await Api.call("/api/community-reviews", {method: "POST", json: {
        unit_id: document.querySelector("#review-unit").value, score: Number(document.querySelector("#review-score").value),
        comment: document.querySelector("#review-comment").value}});
      result.textContent = "已提交，谢谢！";
    } catch (error) { result.textContent = "提交失败：" + error.message; }
  });
}

function logout() {
  localStorage.removeItem("dcg_api_key");
  location.reload();
}

document.querySelector("#logout").addEventListener("click", logout);
document.querySelector("#whistle-form").addEventListener("submit", whistle);
document.querySelector("#unit-type").addEventListener("change", refreshScores);
for (const button of document.querySelectorAll("nav button")) {
  button.addEventListener("click", () => {
    document.querySelectorAll("nav button").forEach(b => b.classList.toggle("active", b === button));
    document.querySelectorAll(".tab").forEach(tab => tab.hidden = tab.id !== `tab-${button.dataset.tab}`);
    if (button.dataset.tab === "scores") refreshScores().catch(e => console.error(e));
  });
}
bindLogin(start);
