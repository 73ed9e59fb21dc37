// 领导驾驶舱 (read-only): today's and this month's figures, trends, the ranking per unit type, the
// exposure list with before/after photos (两图一表) and the bulletins. No write control at all.
let trendChart = null;
const DAY = 86400000;

function localDay(offsetDays = 0) {             // 00:00 Asia/Shanghai, offsetDays from today, as ISO with +08:00
  const shanghai = new Date(Date.now() + 8 * 3600000 + offsetDays * DAY);
  return `${shanghai.toISOString().slice(0, 10)}T00:00:00+08:00`;
}
const monthStart = () => `${localDay().slice(0, 8)}01T00:00:00+08:00`;
async function total(query) { return (await Api.call(`/api/cases?per_page=1&${query}`)).total; }

async function start() {
  const me = await Api.call("/api/me");
  document.querySelector("#me").textContent = `${me.name}（${me.role_name}）`;
  document.querySelector("#logout").hidden = false;
  document.querySelector("#login").hidden = true;
  document.querySelector("#app").hidden = false;
  await refresh();
  Live.on(debounce(() => refreshFigures().catch(() => {}), 1000));
}

async function refresh() {
  await Promise.all([refreshFigures(), refreshTrend(), refreshRankings(), refreshExposure(), refreshBulletins()]);
}

async function refreshFigures() {
  const today = encodeURIComponent(localDay()), month = encodeURIComponent(monthStart());
  const [todayCases, monthCases, open, overdue, monthClosed] = await Promise.all([
    total(`since=${today}`), total(`since=${month}`), Promise.all(["dispatched", "accepted"].map(s => total(`state=${s}`))),
    total("overdue=true"), total(`state=closed&since=${month}`)]);
  const figures = [["今日立案派遣", todayCases], ["本月立案派遣", monthCases], ["在办案件", open[0] + open[1]],
    ["超期未结", overdue], ["本月已结案", monthClosed]];
  document.querySelector("#figures").replaceChildren(...figures.map(([label, value]) =>
    el("div", {class: "figure"}, el("b", {}, String(value)), label)));
}

async function refreshTrend() {
  const days = [...Array(14).keys()].map(n => n - 13);
  const rows = await Promise.all(days.map(async n => {
    const since = encodeURIComponent(localDay(n)), until = encodeURIComponent(localDay(n + 1));
    return [localDay(n).slice(5, 10), await total(`since=${since}&until=${until}`),
            await total(`state=closed&since=${since}&until=${until}`)];
  }));
  trendChart = trendChart || echarts.init(document.querySelector("#trend"));
  trendChart.setOption({tooltip: {trigger: "axis"}, legend: {top: 0, data: ["派遣", "其中已结案"]},
    grid: {left: 40, right: 16, top: 30, bottom: 24}, xAxis: {type: "category", data: rows.map(r => r[0])},
    yAxis: {type: "value", minInterval: 1},
    series: [{name: "派遣", type: "line", data: rows.map(r => r[1])}, {name: "其中已结案", type: "line", data: rows.map(r => r[2])}]});
}

async function refreshRankings() {
  const body = await Api.call("/api/scoring/rankings");
  document.querySelector("#rankings").replaceChildren(...(body.rankings || []).map(group => el("div", {},
    el("h3", {}, group.name),
    group.ranked.length ? el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "排名"), el("th", {}, "单位"),
      el("th", {}, "综合指标值"), el("th", {}, "应结案数"))),
      el("tbody", {}, ...group.ranked.map(r => el("tr", {}, el("td", {}, String(r.rank)), el("td", {}, r.name),
        el("td", {}, String(r.composite)), el("td", {}, String(r.due))))))
      : el("p", {class: "muted"}, `暂无参与排名的单位（另有 ${group.unranked.length} 个单位案件数不足 ${group.minimum_cases}）`))));
}

function photo(url, alt) {
  try {
    const path = new URL(url, location.origin).pathname;
    return /^\/media\/[0-9a-f]{32}$/.test(path) ? el("img", {src: path, alt}) : null;
  } catch (error) { return null; }
}

async function refreshExposure() {
  const body = await Api.call("/api/scoring/exposure?per_page=20");
  const items = body.items || body.cases || [];
  document.querySelector("#exposure").replaceChildren(...(items.length ? items.map(item =>
    el("li", {class: "card late"}, el("h3", {}, `${item.class_name} `, el("small", {}, item.case_id)),
      el("p", {}, `${item.unit_name} · ${item.address || ""} · ${item.status} · 超期 ${item.overdue_hours} 小时`),
      el("div", {class: "photos"}, ...(item.problem_photos || []).map(u => photo(u, "问题照片")),
        item.after_photo ? photo(item.after_photo, "处置后照片") : null)))
    : [el("li", {class: "muted"}, "本月暂无曝光案件")]));
}

async function refreshBulletins() {
  const body = await Api.call("/api/scoring/bulletins");
  const items = body.items || body.bulletins || [];
  document.querySelector("#bulletins").replaceChildren(...(items.length ? items.map(item => {
    const links = ["html", "pdf"].map(fmt => {
      const button = el("button", {type: "button", class: "download", "data-fmt": fmt}, `${item.month} 通报（${fmt.toUpperCase()}）`);
      button.addEventListener("click", () => download(item.month, fmt));
      return button;
    });
    return el("li", {}, ...links, ` 生成于 ${Api.localTime(item.generated_at)}`);
  }) : [el("li", {class: "muted"}, "暂无通报")]));
}

async function download(month, fmt) {                // with the key in a header, then saved as a file
  const answer = await fetch(`/api/scoring/bulletins/${month}.${fmt}`, {headers: {"Authorization": "Bearer " + Api.key()}});
  if (!answer.ok) { document.querySelector("#download-result").textContent = `下载失败 (${answer.status})`; return; }
  const link = el("a", {href: URL.createObjectURL(await answer.blob()), download: `通报-${month}.${fmt}`});
  document.body.append(link); link.click(); link.remove();
}

document.querySelector("#logout").addEventListener("click", () => { localStorage.removeItem("dcg_api_key"); location.reload(); });
bindLogin(start);
