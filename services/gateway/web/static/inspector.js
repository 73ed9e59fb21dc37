// 信息采集员 inspector page: report a problem with a photo; check public reports (核实) and
// verify fixed cases (核查) on site.
let me = null, classes = [];

async function start() {
  me = await Api.call("/api/me");
  document.querySelector("#me").textContent = `${me.name}（${me.role_name}）`;
  document.querySelector("#login").hidden = true;
  document.querySelector("#report-form").closest("section").hidden = !!me.read_only;   // the leader reads only
  document.querySelector("#app").hidden = false;
  classes = (await Api.call("/api/classes")).items;
  const select = document.querySelector("#class-code");
  select.replaceChildren(...classes.map(c => el("option", {value: c.code}, `${c.code} ${c.kind_name || ""}·${c.major_name || ""}·${c.name}`)));
  select.addEventListener("change", showStandard);
  await prefillFromQr();
  showStandard();
  await refreshVerifications();
  await refreshChecks();
  Live.on(debounce(() => { refreshVerifications().catch(() => {}); refreshChecks().catch(() => {}); }, 300));
}

function showStandard() {
  const chosen = classes.find(c => c.code === document.querySelector("#class-code").value);
  document.querySelector("#filing-standard").textContent = chosen ? `立案标准：${chosen.filing_standard || "—"}` : "";
}

async function prefillFromQr() {
  // A component's QR code opens /inspector?component=<object code>: class, place and owner filled in.
  const code = new URLSearchParams(location.search).get("component");
  if (!code) return;
  try {
    const component = await Api.call(`/api/components/${encodeURIComponent(code)}`);
    document.querySelector("#component").value = `${component.object_code} ${component.name || ""}（${component.owner_name || component.owner || ""}）`;
    document.querySelector("#class-code").value = component.class_code;
    document.querySelector("#lon").value = component.location.lon;
    document.querySelector("#lat").value = component.location.lat;
  } catch (error) { document.querySelector("#report-result").textContent = "部件编码无法识别：" + error.message; }
}

async function uploadPhoto() {
  const file = document.querySelector("#photo").files[0];
  if (!file) return [];
  const form = new FormData();
  form.append("photo", file);
  const answer = await fetch("/api/media", {method: "POST", body: form, headers: {"Authorization": "Bearer " + Api.key()}});
  const body = await answer.json();
  if (!answer.ok) throw new Error(Api.message(body, answer.status));
  return [body.url];
}

async function report(event) {
  event.preventDefault();
  const result = document.querySelector("#report-result");
  result.textContent = "提交中…";
  try {
    const media = await uploadPhoto();
    const component = document.querySelector("#component").value.split(" ")[0];
    const body = await Api.call("/api/reports", {method: "POST", json: {
      channel: "inspector", class_code: document.querySelector("#class-code").value,
      location: {lon: Number(document.querySelector("#lon").value), lat: Number(document.querySelector("#lat").value)},
      address: document.querySelector("#address").value, description: document.querySelector("#description").value,
      media_urls: media, inspector_id: me.key_id, ...(component && component !== "—" ? {object_code: component} : {})}});
    result.textContent = body.case_id ? `已立案：${body.case_id}（责任单位 ${body.owner_unit}）`
      : `${body.status === "duplicate" ? "已关联到在办案件 " + body.case_id : "未立案：" + (body.reason || body.status)}`;
  } catch (error) { result.textContent = "提交失败：" + error.message; }
}

// The verification card: the unit's after-photo and note; the verify buttons only when the
// gateway lists "verify" in the case's allowed_actions (roles that may verify).
async function refreshVerifications() {
  const body = await Api.call("/api/cases?state=feedback_given&per_page=50");
  const box = document.querySelector("#to-verify");
  if (!body.items.length) { box.replaceChildren(el("p", {class: "status"}, "暂无待核查案件")); return; }
  const cards = await Promise.all(body.items.map(async item => {
    const full = (await Api.call(`/api/cases/${encodeURIComponent(item.case_id)}`)).dispatch || item;
    const feedback = full.feedback || {};
    const photo = platformPath(feedback.after_photo);
    const noteId = `verify-note-${item.case_id}`;
    const note = el("input", {id: noteId, type: "text", placeholder: "不通过时必填"});
    const allowed = (full.allowed_actions || []).some(entry => entry.action === "verify");
    const pass = el("button", {type: "button", class: "pass"}, "核查通过，结案"),
      fail = el("button", {type: "button", class: "fail"}, "不通过，返工");
    const verify = passed => async () => {
      try {
        await Api.call(`/api/cases/${encodeURIComponent(item.case_id)}/actions/verify`, {method: "POST", json: {
          expected_version: full.version, passed, note: note.value}});
        await refreshVerifications();
      } catch (error) {
        document.querySelector("#verify-result").textContent = "核查失败：" + error.message;
        await refreshVerifications();
      }
    };
    pass.addEventListener("click", verify(true)); fail.addEventListener("click", verify(false));
    return el("div", {class: "card", "data-case": item.case_id}, el("b", {}, `${item.case_id} ${item.class_name}`),
      el("div", {}, `${item.unit_name || item.unit_id} · ${item.address || ""}`),
      photo ? el("img", {src: photo, alt: "处置后照片", class: "after-photo"}) : el("p", {class: "status"}, "（无处置后照片）"),
      el("p", {class: "unit-note"}, `单位说明：${feedback.note || "—"}`),
      allowed ? el("label", {htmlFor: noteId}, "核查意见") : null, allowed ? note : null,
      allowed ? el("div", {class: "row"}, pass, fail) : el("p", {class: "status"}, "本账号不能核查"));
  }));
  box.replaceChildren(...cards);
}

// The 核实 card: a public report the centre sent to be checked; 属实 / 不属实 only when the gateway
// lists "check_report" in the case's allowed_actions. Tasks sent to this account come first.
async function refreshChecks() {
  const body = await Api.call("/api/cases?checking=true&per_page=50");
  const box = document.querySelector("#to-check");
  if (!body.items.length) { box.replaceChildren(el("p", {class: "status"}, "暂无待核实上报")); return; }
  // the grid's inspector is named in the reference data by 工号 or by name
  const mine = item => [me.person_id, me.key_id, me.name].filter(Boolean).includes((item.check || {}).inspector_id);
  const items = [...body.items].sort((a, b) => mine(b) - mine(a));
  box.replaceChildren(...items.map(item => {
    const check = item.check || {};
    const noteId = `check-note-${item.case_id}`;
    const note = el("input", {id: noteId, type: "text", placeholder: "不属实时必填"});
    const allowed = (item.allowed_actions || []).some(entry => entry.action === "check_report");
    const yes = el("button", {type: "button", class: "pass"}, "属实"), no = el("button", {type: "button", class: "fail"}, "不属实");
    const answer = genuine => async () => {
      try {
        await Api.call(`/api/cases/${encodeURIComponent(item.case_id)}/actions/check-report`, {method: "POST", json: {
          expected_version: item.version, genuine, note: note.value}});
        document.querySelector("#check-result").textContent = "";
      } catch (error) { document.querySelector("#check-result").textContent = "核实失败：" + error.message; }
      await refreshChecks();
    };
    yes.addEventListener("click", answer(true)); no.addEventListener("click", answer(false));
    const due = check.due_at ? String(check.due_at).replace("T", " ").slice(0, 16) : "—";
    return el("div", {class: "card", "data-check": item.case_id}, el("b", {}, `${item.case_id} ${item.class_name || ""}`),
      el("div", {}, `${item.address || ""} · 核实时限 ${due}${mine(item) ? " · 派给我" : ""}`),
      allowed ? el("label", {htmlFor: noteId}, "核实情况") : null, allowed ? note : null,
      allowed ? el("div", {class: "row"}, yes, no) : el("p", {class: "status"}, "本账号不能核实"));
  }));
}

function platformPath(url) {
  try {
    const parsed = new URL(url, location.origin);
    return /^\/media\/[0-9a-f]{32}$/.test(parsed.pathname) ? parsed.pathname : null;
  } catch (error) { return null; }
}

document.querySelector("#locate").addEventListener("click", () => navigator.geolocation?.getCurrentPosition(position => {
  document.querySelector("#lon").value = position.coords.longitude.toFixed(6);
  document.querySelector("#lat").value = position.coords.latitude.toFixed(6);
}));
document.querySelector("#report-form").addEventListener("submit", report);
bindLogin(start);
