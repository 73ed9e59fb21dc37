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
