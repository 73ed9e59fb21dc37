// Shared by the command-centre and inspector pages: the API key, JSON calls, Chinese errors.
const Api = {
  key() { return localStorage.getItem("dcg_api_key"); },
  async call(path, options = {}) {
    const headers = Object.assign({"Accept": "application/json"}, options.headers || {});
    if (Api.key()) headers["Authorization"] = "Bearer " + Api.key();
    if (options.json !== undefined) { headers["Content-Type"] = "application/json"; options.body = JSON.stringify(options.json); }
    const answer = await fetch(path, Object.assign({}, options, {headers}));
    const body = answer.headers.get("Content-Type")?.includes("json") ? await answer.json() : await answer.text();
    if (!answer.ok) {
      const error = new Error(Api.message(body, answer.status));
      error.status = answer.status; error.body = body; throw error;
    }
    return body;
  },
  message(body, status) {
    const error = body && body.error;
    if (!error) return `请求失败 (${status})`;
    const fields = error.fields ? " — " + Object.entries(error.fields).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join("; ") : "";
    return (error.message || `请求失败 (${status})`) + fields;
  },
  localTime(value) {
    if (!value) return "—";
    const date = new Date(value);
    return isNaN(date) ? value : date.toLocaleString("zh-CN", {timeZone: "Asia/Shanghai", hour12: false});
  },
};
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value; else if (key.startsWith("data-")) node.setAttribute(key, value); else node[key] = value;
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

// The login form: keep the key, start the page; a key that fails is forgotten with the reason.
function bindLogin(start) {
  const showLogin = () => { document.querySelector("#login").hidden = false; };
  document.querySelector("#login-form").addEventListener("submit", async event => {
    event.preventDefault();
    localStorage.setItem("dcg_api_key", document.querySelector("#api-key").value.trim());
    try { await start(); } catch (error) {
      localStorage.removeItem("dcg_api_key");
      document.querySelector("#login-error").textContent = "登录失败：" + error.message;
    }
  });
  if (Api.key()) start().catch(() => { localStorage.removeItem("dcg_api_key"); showLogin(); });
  else showLogin();
}

// Live updates (Server-Sent Events from GET /api/stream), read with fetch so the key travels in a
// header, never in a URL. After a drop (a gateway restart too) it reconnects by itself and sends
// Last-Event-ID: the gateway replays what the page missed. Replaces polling.
const Live = {
  last: null, handlers: [], running: false,
  on(handler) { this.handlers.push(handler); if (!this.running) this.run(); },
  async run() {
    this.running = true;
    let delay = 1000;
    while (Api.key()) {
      try {
        const headers = {"Authorization": "Bearer " + Api.key(), "Accept": "text/event-stream"};
        if (this.last !== null) headers["Last-Event-ID"] = String(this.last);
        const answer = await fetch("/api/stream", {headers, cache: "no-store"});
        if (answer.status === 401 || answer.status === 403) { this.status(false); return; }
        if (!answer.ok) throw new Error(String(answer.status));
        this.status(true);
        delay = 1000;
        const reader = answer.body.getReader(), decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const {value, done} = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, {stream: true});
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            this.dispatch(block);
          }
        }
      } catch (error) { this.status(false); }
      await new Promise(resolve => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 15000);
    }
  },
  dispatch(block) {
    let id = null, event = "message", data = "";
    for (const line of block.split("\n")) {
      if (line.startsWith("id: ")) id = Number(line.slice(4));
      else if (line.startsWith("event: ")) event = line.slice(7);
      else if (line.startsWith("data: ")) data += line.slice(6);
    }
    if (id !== null && !Number.isNaN(id)) this.last = id;
    if (event === "change" && data) {
      const item = JSON.parse(data);
      for (const handler of this.handlers) handler(item);
    } else if (event === "hello") {       // connected from "now": reload once, for what came before it
      for (const handler of this.handlers) handler({type: "hello"});
    }
  },
  status(up) {
    const node = document.querySelector("#live");
    if (node) { node.textContent = up ? "● 实时" : "○ 重新连接中…"; node.dataset.up = String(up); }
  },
};

// Call ``fn`` at most once per ``ms`` (a burst of live events → one reload).
function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

// Deadline display: the remaining time and the lateness colour (ok / warn / late / parked).
function lateness(item) {
  if (["parked", "feedback_given", "closed"].includes(item.state)) return "parked";
  const deadline = new Date(item.deadline_utc || item.deadline), start = new Date(item.dispatched_at), now = new Date();
  if (now > deadline) return "late";
  const share = (now - start) / Math.max(1, deadline - start);
  return share >= 0.8 ? "warn" : "ok";
}
function countdown(item) {
  if (!item.deadline) return "—";
  const ms = new Date(item.deadline_utc || item.deadline) - new Date();
  const minutes = Math.floor(Math.abs(ms) / 60000), days = Math.floor(minutes / 1440),
    hours = Math.floor((minutes % 1440) / 60), rest = minutes % 60;
  const text = `${days ? days + "天" : ""}${hours ? hours + "小时" : ""}${rest}分`;
  return ms >= 0 ? `剩余 ${text}` : `已超期 ${text}`;
}
