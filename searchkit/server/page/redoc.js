"use strict";
// ReDoc from the server's own copy (no CDN, no web fonts), given the schema fetched here so
// that the token the search page keeps in this tab, if any, goes with it.
window.addEventListener("DOMContentLoaded", async () => {
  const token = sessionStorage.getItem("searchkit.token");
  const problem = document.getElementById("redoc-error");
  try {
    const response = await fetch("/openapi.json", { headers: token ? { Authorization: `Bearer ${token}` } : {} });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || `the server answered ${response.status}`);
    window.Redoc.init(data, {}, document.getElementById("redoc"));
  } catch (err) {
    problem.textContent = `${err.message} (open the search page at / to give the token)`;
    problem.hidden = false;
  }
});
