"use strict";
// Swagger UI from the server's own copy (no CDN). The token that the search page keeps in
// this tab, if any, goes with each request Swagger UI makes, the schema's included.
window.addEventListener("DOMContentLoaded", () => {
  const token = sessionStorage.getItem("searchkit.token");
  window.ui = window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIBundle.SwaggerUIStandalonePreset],
    layout: "BaseLayout",
    deepLinking: true,
    validatorUrl: null, // no badge fetched from swagger.io
    showExtensions: true,
    showCommonExtensions: true,
    requestInterceptor: (request) => {
      if (token) request.headers.Authorization = `Bearer ${token}`;
      return request;
    },
  });
});
