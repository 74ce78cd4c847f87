/* The divergence panel of a deployment (trading/partials/deployment_divergence.html): the
   equity of the live run and of its backtest on one plotly chart. The data comes from the
   panel's JSON script element; the panel arrives with htmx, so charts are drawn on page load
   and after every swap. Loaded as a static file: the Content-Security-Policy forbids inline
   scripts. */
(function () {
  "use strict";

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function draw(el) {
    if (!window.Plotly) { return; }
    var node = document.getElementById(el.getAttribute("data-chart-source"));
    if (!node) { return; }
    var d = JSON.parse(node.textContent);
    var axis = {gridcolor: cssVar("--line"), zerolinecolor: cssVar("--line")};
    var data = [
      {type: "scatter", mode: "lines", name: "Backtest", x: d.backtest.x, y: d.backtest.y,
       line: {width: 1.4, color: cssVar("--muted")}},
      {type: "scatter", mode: "lines+markers", name: "Live", x: d.live.x, y: d.live.y,
       line: {width: 1.8, color: cssVar("--accent")}, marker: {size: 5}}
    ];
    var layout = {
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: {color: cssVar("--ink"), family: "system-ui, sans-serif", size: 12},
      margin: {l: 64, r: 16, t: 16, b: 40}, xaxis: axis,
      yaxis: window.nexow.moneyAxis(d.backtest.y.concat(d.live.y),
                                    Object.assign({title: {text: "Equity"}}, axis)),
      showlegend: true, legend: {orientation: "h", y: -0.2}, hovermode: "x unified"
    };
    window.Plotly.react(el, data, layout,
                        {responsive: true, displaylogo: false, displayModeBar: false});
    el.dataset.drawn = "1";
  }

  function init(scope) {
    scope.querySelectorAll("[data-divergence-chart]:not([data-drawn])").forEach(draw);
  }

  function redrawAll() {
    document.querySelectorAll("[data-divergence-chart][data-drawn]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function () { init(document); });
  document.addEventListener("nexow:themechange", redrawAll);
}());
