// 一张图: the grid map with street/town outlines and labels (dissolved from the grids by the
// gateway, GET /api/map), grid codes on hover, case markers clustered when they overlap at the
// current zoom, filters (state, lateness, class, street) and a components (部件) layer that the
// legend switches on and off. Everything from the district's own data: no outside tiles.
const OneMap = {
  chart: null, cases: [], layers: null,
  async setUp(chart) {
    this.chart = chart;
    this.layers = await Api.call("/api/map");
    const streets = this.layers.streets.features;
    const outlines = [];
    for (const feature of streets) {
      const polygons = feature.geometry.type === "Polygon" ? [feature.geometry.coordinates] : feature.geometry.coordinates;
      for (const polygon of polygons) outlines.push({coords: polygon[0], name: feature.properties.name});
    }
    const majors = {};
    for (const c of (await Api.call("/api/classes")).items) majors[c.code.slice(0, 3)] = `${c.kind_name || ""}·${c.major_name || c.code.slice(0, 3)}`;
    document.querySelector("#filter-class").append(...Object.entries(majors).map(([code, name]) => el("option", {value: code}, name)));
    const select = document.querySelector("#filter-street");
    select.append(...streets.map(f => el("option", {value: f.properties.id}, f.properties.name)));
    chart.setOption({
      legend: {bottom: 0, data: ["案件", "部件"], selected: {"部件": false}},
      series: [
        {name: "案件", type: "scatter", coordinateSystem: "geo", data: [], symbolSize: p => p && p[2] > 1 ? 18 + Math.min(12, p[2]) : 12,
         itemStyle: {color: p => STATE_COLOURS[p.data.lateness]},
         label: {show: true, formatter: p => p.data.count > 1 ? String(p.data.count) : "", color: "#fff", fontWeight: "bold"}},
        {name: "街镇边界", type: "lines", coordinateSystem: "geo", polyline: true, silent: true, data: outlines,
         lineStyle: {color: "#0b4f8a", width: 2, opacity: 0.8}},
        {name: "街镇名称", type: "scatter", coordinateSystem: "geo", silent: true, symbolSize: 0,
         data: streets.map(f => ({name: f.properties.name, value: f.properties.label})),
         label: {show: true, formatter: p => p.name, color: "#0b4f8a", fontSize: 13, fontWeight: "bold"}},
        {name: "部件", type: "scatter", coordinateSystem: "geo", symbol: "diamond", symbolSize: 8,
         itemStyle: {color: "#344054"},
         data: this.layers.components.map(c => ({name: c.object_code, value: [c.location.lon, c.location.lat], component: c}))},
      ],
    });
    chart.on("georoam", debounce(() => this.draw(), 150));
    for (const id of ["#filter-state", "#filter-lateness", "#filter-class", "#filter-street"]) {
      document.querySelector(id).addEventListener("change", () => this.draw());
    }
  },
  show(items) { this.cases = items; this.draw(); },
  filtered() {
    const state = document.querySelector("#filter-state").value, late = document.querySelector("#filter-lateness").value,
      kind = document.querySelector("#filter-class").value, street = document.querySelector("#filter-street").value;
    return this.cases.filter(i => i.location && (!state || i.state === state) && (!late || lateness(i) === late)
      && (!kind || (i.class_code || "").startsWith(kind)) && (!street || i.street_id === street));
  },
  draw() {
    if (!this.chart) return;
    const clusters = [];                           // markers closer than 16 px at this zoom become one
    for (const item of this.filtered()) {
      const at = this.chart.convertToPixel({geoIndex: 0}, [item.location.lon, item.location.lat]) || [0, 0];
      const near = clusters.find(c => Math.hypot(c.at[0] - at[0], c.at[1] - at[1]) < 16);
      if (near) near.items.push(item); else clusters.push({at, items: [item]});
    }
    const rank = {late: 3, warn: 2, ok: 1, parked: 0};
    const data = clusters.map(({items}) => {
      const first = items[0];
      if (items.length === 1) return Object.assign({}, first, {name: first.case_id, value: [first.location.lon, first.location.lat, 1],
        lateness: lateness(first), count: 1});
      const worst = items.map(lateness).sort((a, b) => rank[b] - rank[a])[0];
      return {name: `${items.length} 件`, case_ids: items.map(i => i.case_id), count: items.length, lateness: worst,
        value: [first.location.lon, first.location.lat, items.length]};
    });
    this.chart.setOption({series: [{name: "案件", data}]});
  },
  tooltip(p) {
    if (p.seriesName === "部件") return `部件 ${p.data.component.name}<br>${p.data.component.class_name || ""} · ${p.name}`;
    if (p.seriesName === "案件" && p.data.count > 1) return `${p.data.count} 件案件（放大查看）<br>${p.data.case_ids.slice(0, 5).join("<br>")}`;
    if (p.seriesName === "案件") return `${p.data.case_id}<br>${p.data.class_name}<br>${p.data.unit_name || p.data.unit_id}<br>${p.data.state_label}<br>时限 ${Api.localTime(p.data.deadline)}`;
    return p.name ? `网格 ${p.name}${p.data && p.data.gridName ? " " + p.data.gridName : ""}` : "";
  },
};
