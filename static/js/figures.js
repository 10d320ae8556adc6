(function () {
  "use strict";
  // Draw every [data-figure] element from its json_script; after an HTMX swap, update in place.
  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }
  function draw(el) {
    var source = document.getElementById(el.dataset.figure);
    if (!source) { return; }
    if (!window.Plotly) {
      el.textContent = el.dataset.unavailable || "The chart could not be drawn (plotly.js did not load).";
      return;
    }
    var figure = JSON.parse(source.textContent);
    var layout = figure.layout || {};
    var text = cssVar("--muted"), grid = cssVar("--line");
    layout.font = Object.assign({}, layout.font, {color: text});
    Object.keys(layout).forEach(function (key) {
      if (/^[xy]axis\d*$/.test(key)) { layout[key].gridcolor = grid; }
    });
    Plotly.react(el, figure.data, layout, {
      responsive: true, displaylogo: false,
      modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"]
    });
  }
  function drawAll() { document.querySelectorAll("[data-figure]").forEach(draw); }
  document.addEventListener("DOMContentLoaded", drawAll);
  document.addEventListener("htmx:afterSettle", drawAll);
  // A poll that fails leaves the old figures on screen: say so, so nobody trusts them.
  function stale(on) {
    document.querySelectorAll(".stale-note").forEach(function (note) { note.hidden = !on; });
    document.documentElement.classList.toggle("is-stale", on);
  }
  document.addEventListener("htmx:sendError", function () { stale(true); });
  document.addEventListener("htmx:responseError", function () { stale(true); });
  document.addEventListener("htmx:afterSettle", function () { stale(false); });
})();
