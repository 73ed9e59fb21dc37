// Case actions from the page: a small dialog per action with its required fields; the decision
// sends the expected_version the page saw. The buttons are exactly the case's allowed_actions
// (computed by the gateway, services/gateway/allowed.py), labelled with the API's own words.
const ACTION_FIELDS = {
  accept: [["note", "签收说明（可选）", "text"]],
  return: [["reason", "回退原因", "text", true], ["to_unit", "建议责任单位", "unit"]],
  request_extension: [["extra", "延长的工作时间（如 4h、1d）", "text", true], ["reason", "申请原因", "text", true]],
  decide_extension: [["approved", "审批结果", "yesno", true], ["reason", "审批意见", "text"]],
  request_park: [["reason", "挂账原因", "text", true]],
  decide_park: [["approved", "审批结果", "yesno", true], ["reason", "审批意见", "text"]],
  unpark: [["reason", "解除说明", "text"]],
  report_stage: [["stage", "阶段名称", "text", true], ["note", "进展说明", "text"]],
  feedback: [["after_photo", "处置后照片（拍照或选择）", "photo", true], ["note", "处置说明", "text"]],
  verify: [["passed", "核查结果", "yesno", true], ["note", "核查意见（不通过时必填）", "text"]],
  set_urgency: [["urgency", "紧急程度", "urgency", true], ["reason", "调整原因", "text", true]],
  request_check: [["note", "核实要求（可选）", "text"]],
  check_report: [["genuine", "核实结果", "genuine", true], ["note", "核实情况（不属实时必填）", "text"]],
  cancel: [["reason", "不立案理由", "text", true]],
};
let unitChoices = null;

async function unitOptions() {
  if (!unitChoices) unitChoices = (await Api.call("/api/units")).items || [];
  return unitChoices;
}

function actionButtons(item, onDone) {
  return (item.allowed_actions || []).map(entry => {
    const button = el("button", {type: "button", class: "action", "data-action": entry.action}, entry.label);
    button.addEventListener("click", () => openActionDialog(item, entry, onDone));
    return button;
  });
}

async function fieldFor([name, label, kind, required], prefix) {
  const id = `${prefix}-${name}`;
  let input;
  if (kind === "yesno") {
    input = el("select", {id, name, required: !!required},
      el("option", {value: "true"}, "同意 / 通过"), el("option", {value: "false"}, "不同意 / 不通过"));
  } else if (kind === "genuine") {
    input = el("select", {id, name, required: true}, el("option", {value: "true"}, "属实"), el("option", {value: "false"}, "不属实"));
  } else if (kind === "urgency") {
    input = el("select", {id, name, required: true}, el("option", {value: "urgent"}, "紧急"), el("option", {value: "normal"}, "一般"));
  } else if (kind === "unit") {
    input = el("select", {id, name}, el("option", {value: ""}, "（由指挥中心重新派遣）"),
      ...(await unitOptions()).map(unit => el("option", {value: unit.id}, unit.name)));
  } else if (kind === "photo") {
    input = el("input", {id, name, type: "file", accept: "image/*", capture: "environment", required: !!required});
  } else {
    input = el("input", {id, name, type: "text", required: !!required, maxLength: 2000});
  }
  return el("p", {}, el("label", {htmlFor: id}, label + (required ? " *" : "")), input);
}

async function openActionDialog(item, entry, onDone) {
  const prefix = `act-${entry.action}`;
  const fields = await Promise.all((ACTION_FIELDS[entry.action] || []).map(spec => fieldFor(spec, prefix)));
  const message = el("p", {class: "error", role: "alert"});
  const form = el("form", {method: "dialog"},
    el("h3", {}, `${entry.label} · 案件 ${item.case_id}`),
    el("p", {class: "muted"}, `${item.class_name || item.class_code || ""} ${item.address || ""}（版本 ${item.version}）`),
    ...fields, message,
    el("p", {class: "buttons"}, el("button", {type: "submit", class: "primary"}, "确定"),
      el("button", {type: "button", class: "cancel"}, "取消")));
  const dialog = el("dialog", {class: "action-dialog", "data-action": entry.action}, form);
  dialog.setAttribute("aria-label", entry.label);
  document.body.append(dialog);
  form.querySelector(".cancel").addEventListener("click", () => { dialog.close(); dialog.remove(); });
  form.addEventListener("submit", async event => {
    event.preventDefault();
    const body = {expected_version: item.version};
    try {
      for (const [name, , kind] of ACTION_FIELDS[entry.action] || []) {
        const input = form.querySelector(`[name=${name}]`);
        if (kind === "yesno" || kind === "genuine") body[name] = input.value === "true";
        else if (kind === "photo") body[name] = await uploadPhoto(input.files[0]);
        else if (input.value.trim()) body[name] = input.value.trim();
      }
      const answer = await Api.call(`/api/cases/${encodeURIComponent(item.case_id)}/actions/${entry.path}`,
                                    {method: "POST", json: body});
      dialog.close(); dialog.remove();
      onDone(answer.case, `${entry.label}：已完成`);
    } catch (error) {
      if (error.status === 409) {              // someone acted first: reload the item and say why
        dialog.close(); dialog.remove();
        onDone(null, `${entry.label}未执行：${error.message}。已重新载入最新状态。`, true);
      } else {
        message.textContent = `${entry.label}失败：${error.message}`;
      }
    }
  });
  dialog.showModal();
  const first = form.querySelector("input, select");
  if (first) first.focus();
}

async function uploadPhoto(file) {
  if (!file) throw new Error("请先拍照或选择照片");
  const data = new FormData();
  data.append("photo", file);
  const headers = {"Authorization": "Bearer " + Api.key(), "Accept": "application/json"};
  const answer = await fetch("/api/media", {method: "POST", body: data, headers});
  const body = await answer.json();
  if (!answer.ok) throw new Error(Api.message(body, answer.status));
  return body.path || body.url;
}
