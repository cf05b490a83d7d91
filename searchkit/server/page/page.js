"use strict";
// The search page of `searchkit serve`: plain DOM, no framework, no build step.
// Every text from the server goes in with textContent (or a text node), never as markup.
(() => {
  const TOKEN_KEY = "searchkit.token";
  const MODES = ["dense", "keyword", "hybrid"];
  const $ = (id) => document.getElementById(id);
  const state = { token: sessionStorage.getItem(TOKEN_KEY), searches: 0, example: null, fields: [] };

  class ApiError extends Error {
    constructor(status, message, sentToken) {
      super(message);
      this.status = status;
      this.sentToken = sentToken; // a 401 without one is the server asking for it, not an error
    }
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function showError(node, message) {
    node.textContent = message || "";
    node.hidden = !message;
  }

  // --- the API ------------------------------------------------------------------------------

  async function api(path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    const init = { method: body === undefined ? "GET" : "POST", headers, cache: "no-store" };
    if (body !== undefined) init.body = JSON.stringify(body);
    const sentToken = Boolean(state.token);
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      const message = `cannot reach the server (${err.message}); is searchkit serve still running?`;
      throw new ApiError(0, message, sentToken);
    }
    const data = await response.json().catch(() => null);
    if (response.ok) return data;
    const message = data && typeof data.error === "string" ? data.error : `the server answered ${response.status}`;
    if (response.status === 401) askForToken(sentToken ? message : "");
    throw new ApiError(response.status, message, sentToken);
  }

  // --- the token ----------------------------------------------------------------------------

  function askForToken(message) {
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    $("token-form").hidden = false;
    showError($("token-error"), message);
    $("token").focus();
  }

  function useToken(event) {
    event.preventDefault();
    const token = $("token").value.trim();
    if (!token) return;
    state.token = token;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
    $("token-form").hidden = true;
    start();
  }

  // --- the address --------------------------------------------------------------------------

  function paramsOfForm() {
    const params = new URLSearchParams();
    params.set("index", $("index").value);
    params.set("q", $("q").value);
    params.set("k", $("k").value.trim() || "10");
    params.set("mode", $("mode").value);
    const where = $("where").value.trim();
    if (where) params.set("where", where);
    if ($("group").checked) params.set("group", "1");
    return params;
  }

  function fillForm(params) {
    const index = params.get("index");
    if (index && [...$("index").options].some((o) => o.value === index)) $("index").value = index;
    $("q").value = params.get("q") || "";
    $("k").value = params.get("k") || "10";
    $("mode").value = MODES.includes(params.get("mode")) ? params.get("mode") : "dense";
    $("group").checked = params.get("group") === "1";
    $("where").value = params.get("where") || "";
    if (params.get("where")) $("filter").open = true;
  }

  // The search body of `params`, or an Error that says what to fix before asking the server.
  function requestOf(params) {
    const k = Number(params.get("k") || "10");
    if (!Number.isInteger(k)) throw new Error(`k must be a whole number from 1 to 1000, not ${params.get("k")}`);
    const body = { query: params.get("q") || "", k, mode: params.get("mode") || "dense" };
    if (params.get("group") === "1") body.group_by_parent = true;
    const where = params.get("where");
    if (where) body.where = parseWhere(where);
    return { name: params.get("index") || $("index").value, body };
  }

  function parseWhere(text) {
    let where;
    try {
      where = JSON.parse(text);
    } catch (err) {
      throw new Error(`the filter is not valid JSON (${err.message}); for example ${exampleText()}`);
    }
    if (where === null || typeof where !== "object" || Array.isArray(where)) {
      throw new Error(`the filter must be a JSON object, for example ${exampleText()}`);
    }
    return where;
  }

  // --- searching ----------------------------------------------------------------------------

  function submitSearch(event) {
    event.preventDefault();
    const params = paramsOfForm();
    if (`?${params}` !== window.location.search) history.pushState(null, "", `/?${params}`);
    search(params);
  }

  async function search(params) {
    const mine = ++state.searches; // an older answer arriving late is dropped
    showError($("search-error"), "");
    if (!params.get("q")) {
      showResults(null);
      return;
    }
    let request;
    try {
      request = requestOf(params);
    } catch (err) {
      showResults(null);
      showError($("search-error"), err.message);
      return;
    }
    $("summary").textContent = "Searching…";
    const started = performance.now();
    try {
      const result = await api(`/indexes/${encodeURIComponent(request.name)}/search`, request.body);
      if (mine === state.searches) showResults(result, performance.now() - started);
    } catch (err) {
      if (mine !== state.searches) return;
      showResults(null);
      showError($("search-error"), err.message);
    }
  }

  function showResults(result, elapsed) {
    const list = $("results");
    list.replaceChildren();
    $("summary").textContent = "";
    if (!result) return;
    const best = Math.max(...result.hits.map((h) => h.score));
    const query = result.mode === "dense" ? "" : result.query;
    for (const hit of result.hits) list.append(hitItem(hit, best, query));
    const count = `${result.hits.length} ${result.hits.length === 1 ? "hit" : "hits"}`;
    const exact = result.exact ? "exact" : "approximate";
    $("summary").textContent = `${count} · ${result.mode} · ${exact} · ${Math.round(elapsed)} ms`;
    state.example = exampleFromHits(result.hits) || state.example;
    showExample();
  }

  function hitItem(hit, best, query) {
    const item = el("li", "hit");
    const head = el("div", "hit-head");
    head.append(el("span", "rank", `#${hit.rank}`), scoreOf(hit.score, best), el("code", "id", hit.id));
    const text = el("p", "text");
    for (const [part, marked] of window.searchkitMarks.markWords(hit.text, query)) {
      text.append(marked ? el("mark", null, part) : document.createTextNode(part));
    }
    item.append(head, text);
    if (Object.keys(hit.metadata).length) item.append(metadataTable(hit.metadata));
    return item;
  }

  // How far a score is from the best one, 0 to 1 (scores may be negative: minus distances).
  function ratio(score, best) {
    if (best > 0) return Math.max(score, 0) / best;
    if (best < 0) return score < 0 ? best / score : 0;
    return score === best ? 1 : 0;
  }

  function scoreOf(score, best) {
    const wrap = el("span", "score");
    const bar = el("span", "bar");
    bar.setAttribute("aria-hidden", "true");
    const fill = el("span", "fill");
    fill.style.width = `${(100 * ratio(score, best)).toFixed(1)}%`; // CSSOM: allowed by the CSP
    bar.append(fill);
    wrap.append(el("span", "value", score.toFixed(4)), bar);
    wrap.title = `score ${score}`;
    return wrap;
  }

  function metadataTable(metadata) {
    const table = el("table", "meta");
    for (const [key, value] of Object.entries(metadata)) {
      const row = el("tr");
      row.append(el("th", null, key), el("td", null, typeof value === "string" ? value : JSON.stringify(value)));
      table.append(row);
    }
    return table;
  }

  // --- the filter's example -----------------------------------------------------------------

  // From the metadata of the results shown (a value the index holds), else from the names of
  // its indexed fields.
  function exampleFromHits(hits) {
    for (const hit of hits) {
      const scalar = Object.entries(hit.metadata).find(([, v]) => ["string", "number", "boolean"].includes(typeof v));
      if (scalar) return { [scalar[0]]: scalar[1] };
    }
    return null;
  }

  function exampleText() {
    const field = state.fields[0];
    return JSON.stringify(state.example || (field ? { [field]: "value" } : { field: "value" }));
  }

  function showExample() {
    $("where-example").textContent = exampleText();
    $("where").placeholder = exampleText();
  }

  // --- the index panel ----------------------------------------------------------------------

  function size(bytes) {
    const units = ["B", "KB", "MB", "GB", "TB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit++;
    }
    return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
  }

  function infoRows(info) {
    const model = info.model || {};
    const index = info.index || {};
    const counts = info.counts || {};
    const sizes = info.sizes || {};
    const total = Object.values(sizes).reduce((a, b) => a + b, 0);
    return [
      ["Model", `${model.name} (${model.dimension} dimensions, ${model.backend})`],
      ["Metric", info.metric],
      ["Index type", [index.type, index.resolved, index.faiss].filter(Boolean).join(" · ")],
      ["Items", counts.items],
      ["Vectors", counts.vectors],
      ["Truncated", counts.truncated],
      ["Segments", (info.segments || []).length],
      ["Fields indexed", (info.fields || []).join(", ") || "none"],
      ["Size", `${size(total)} in ${Object.keys(sizes).length} files`],
      ...Object.entries(sizes).map(([name, bytes]) => [`  ${name}`, size(bytes)]),
      ["Generation", info.generation],
      ["Updated", info.updated],
    ];
  }

  async function showInfo() {
    const list = $("info");
    showError($("info-error"), "");
    const name = $("index").value;
    if (!name) return;
    try {
      const info = await api(`/indexes/${encodeURIComponent(name)}`);
      list.replaceChildren();
      for (const [term, value] of infoRows(info)) {
        list.append(el("dt", term.startsWith(" ") ? "file" : null, term.trim()), el("dd", null, value ?? ""));
      }
      state.fields = info.fields || [];
      showExample();
    } catch (err) {
      list.replaceChildren();
      showError($("info-error"), err.message);
    }
  }

  // --- the similarity panel -----------------------------------------------------------------

  async function compare(event) {
    if (event) event.preventDefault();
    showError($("sim-error"), "");
    const texts = $("sim-texts").value.split("\n").map((t) => t.trim()).filter(Boolean);
    if (!texts.length) {
      showError($("sim-error"), "write at least one text, one per line");
      return;
    }
    try {
      showMatrix(await api("/similarity", { texts, metric: $("metric").value }));
    } catch (err) {
      $("matrix").replaceChildren();
      $("sim-note").hidden = true;
      showError($("sim-error"), err.message);
    }
  }

  function showMatrix(result) {
    const all = result.scores.flat();
    const low = Math.min(...all);
    const span = Math.max(...all) - low || 1;
    const head = el("tr");
    head.append(el("td"), ...result.columns.map((c) => el("th", "col", c)));
    const rows = result.rows.map((label, i) => {
      const row = el("tr");
      row.append(el("th", "row", label));
      for (const value of result.scores[i]) {
        const cell = el("td", "cell", value.toFixed(3));
        const t = (value - low) / span;
        cell.style.backgroundColor = `hsl(212 75% ${Math.round(96 - 58 * t)}%)`;
        if (t > 0.55) cell.classList.add("dark");
        cell.title = `${result.metric}: ${value}`;
        row.append(cell);
      }
      return row;
    });
    const caption = el("caption", null, `${result.metric}, ${result.rows.length} × ${result.columns.length}`);
    $("matrix").replaceChildren(caption, el("thead"), el("tbody"));
    $("matrix").tHead.append(head);
    $("matrix").tBodies[0].append(...rows);
    $("sim-note").hidden = false;
  }

  // --- start --------------------------------------------------------------------------------

  async function start() {
    showError($("search-error"), "");
    let listed;
    try {
      listed = await api("/indexes");
    } catch (err) {
      if (err.status !== 401 || err.sentToken) showError($("search-error"), err.message);
      return;
    }
    const select = $("index");
    const chosen = select.value;
    select.replaceChildren(...listed.indexes.map((i) => el("option", null, i.name)));
    if (chosen) select.value = chosen;
    const params = new URLSearchParams(window.location.search);
    fillForm(params);
    showInfo();
    if (params.get("q")) search(params);
  }

  function focusQuery(event) {
    const typing = event.target.closest("input, textarea, select, [contenteditable]");
    if (event.key !== "/" || typing || event.ctrlKey || event.metaKey || event.altKey) return;
    event.preventDefault();
    $("q").focus();
    $("q").select();
  }

  function useExample() {
    $("where").value = exampleText();
    $("where").focus();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("search-form").addEventListener("submit", submitSearch);
    $("token-form").addEventListener("submit", useToken);
    $("sim-form").addEventListener("submit", compare);
    $("metric").addEventListener("change", () => compare());
    $("index").addEventListener("change", () => {
      state.example = null;
      state.fields = [];
      showExample();
      showInfo();
    });
    $("use-example").addEventListener("click", useExample);
    document.addEventListener("keydown", focusQuery);
    window.addEventListener("popstate", () => {
      const params = new URLSearchParams(window.location.search);
      fillForm(params);
      search(params);
    });
    showExample();
    start();
  });
})();
