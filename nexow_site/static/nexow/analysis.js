/* Nexow analyses pages: live progress of analyses over the organisation WebSocket (with gap
   detection and REST catch-up), the result charts (plotly.js: sweep heatmap with a choice of
   parameter pair, walk-forward equity with window boundaries, Monte Carlo fan and histograms)
   and the sortable parameter-set table. Loaded as a static file: the Content-Security-Policy
   forbids inline scripts; chart data comes from <script type="application/json"> blocks. */
(function () {
  "use strict";

  var root = document.documentElement;

  function cssVar(name) {
    return getComputedStyle(root).getPropertyValue(name).trim();
  }

  function readJson(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function layout(extra) {
    var base = {
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: {color: cssVar("--ink"), family: "system-ui, sans-serif", size: 12},
      margin: {l: 64, r: 16, t: 16, b: 44},
      xaxis: {gridcolor: cssVar("--line"), zerolinecolor: cssVar("--line")},
      yaxis: {gridcolor: cssVar("--line"), zerolinecolor: cssVar("--line")},
      showlegend: false, hovermode: "closest"
    };
    return Object.assign(base, extra || {});
  }

  /* ------------------------------------------------------------------------- charts --- */

  function heatmapFigure(d, el) {
    var controls = document.querySelector('[data-heatmap-controls="' + el.id + '"]');
    var xName = d.grids[0].x, yName = d.grids[0].y;
    if (controls) {
      xName = controls.querySelector('[data-heatmap-axis="x"]').value;
      yName = controls.querySelector('[data-heatmap-axis="y"]').value;
    }
    var grid = null, transposed = false;
    d.grids.forEach(function (g) {
      if (g.x === xName && g.y === yName) { grid = g; }
      if (g.x === yName && g.y === xName) { grid = g; transposed = true; }
    });
    if (!grid) { return null; } /* the same parameter on both axes */
    var xs = transposed ? grid.ys : grid.xs, ys = transposed ? grid.xs : grid.ys;
    var z = grid.z;
    if (transposed) {
      z = grid.xs.map(function (_, j) { return grid.z.map(function (row) { return row[j]; }); });
    }
    var good = cssVar("--up"), bad = cssVar("--down");
    var data = [{
      type: "heatmap", x: xs.map(String), y: ys.map(String), z: z, hoverongaps: false,
      colorscale: [[0, d.maximize ? bad : good], [0.5, cssVar("--paper")], [1, d.maximize ? good : bad]],
      colorbar: {title: {text: grid.title}, outlinewidth: 0},
      hovertemplate: xName + "=%{x}<br>" + yName + "=%{y}<br>" + grid.title + " %{z:.4g}<extra></extra>"
    }];
    if (grid.best) {
      var bx = transposed ? grid.best[1] : grid.best[0], by = transposed ? grid.best[0] : grid.best[1];
      data.push({type: "scatter", mode: "markers", x: [String(bx)], y: [String(by)], name: "Best",
                 marker: {symbol: "star", size: 16, color: cssVar("--ink"),
                          line: {color: cssVar("--paper"), width: 1}},
                 hovertemplate: "Best set<extra></extra>"});
    }
    return {data: data, layout: layout({
      xaxis: {type: "category", title: {text: xName}, showgrid: false},
      yaxis: {type: "category", title: {text: yName}, showgrid: false},
      margin: {l: 64, r: 16, t: 16, b: 48}
    })};
  }

  var builders = {
    heatmap: heatmapFigure,
    "sweep-line": function (d) {
      return {data: [{type: "scatter", mode: "lines+markers", x: d.xs, y: d.y,
                      line: {color: cssVar("--accent")}}],
              layout: layout({xaxis: {title: {text: d.x}, gridcolor: cssVar("--line")}})};
    },
    "walk-forward": function (d) {
      var shapes = d.boundaries.map(function (t) {
        return {type: "line", xref: "x", yref: "paper", x0: t, x1: t, y0: 0, y1: 1,
                line: {color: cssVar("--muted"), width: 1, dash: "dot"}};
      });
      var notes = d.boundaries.map(function (t, i) {
        return {x: t, y: 1, xref: "x", yref: "paper", text: d.labels[i], showarrow: false,
                xanchor: "left", yanchor: "top", font: {color: cssVar("--muted"), size: 11}};
      });
      return {data: [{type: "scatter", mode: "lines", x: d.x, y: d.y, name: "Equity",
                      line: {width: 1.6, color: cssVar("--accent")}}],
              layout: layout({shapes: shapes, annotations: notes, hovermode: "x unified",
                              yaxis: {gridcolor: cssVar("--line"), title: {text: "Equity"}}})};
    },
    fan: function (d) {
      var accent = cssVar("--accent");
      function band(lo, hi, name, opacity) {
        return [
          {type: "scatter", mode: "lines", x: d.x, y: d[lo], line: {width: 0}, hoverinfo: "skip",
           showlegend: false},
          {type: "scatter", mode: "lines", x: d.x, y: d[hi], line: {width: 0}, fill: "tonexty",
           fillcolor: hexAlpha(accent, opacity), name: name, hoverinfo: "skip"}
        ];
      }
      var data = band("p5", "p95", "5–95 %", 0.18).concat(band("p25", "p75", "25–75 %", 0.35));
      data.push({type: "scatter", mode: "lines", x: d.x, y: d.p50, name: "Median",
                 line: {width: 1.8, color: accent}});
      if (d.actual) {
        data.push({type: "scatter", mode: "lines", x: d.x, y: d.actual, name: "Actual run",
                   line: {width: 1.4, color: cssVar("--ink"), dash: "dash"}});
      }
      return {data: data, layout: layout({
        showlegend: true, legend: {orientation: "h", y: -0.18}, hovermode: "x unified",
        xaxis: {title: {text: d.xtitle || ""}, gridcolor: cssVar("--line")},
        yaxis: {title: {text: "Equity"}, gridcolor: cssVar("--line")}
      })};
    },
    histogram: function (d) {
      var shapes = [];
      if (typeof d.actual === "number") {
        shapes.push({type: "line", xref: "x", yref: "paper", x0: d.actual, x1: d.actual, y0: 0,
                     y1: 1, line: {color: cssVar("--ink"), width: 1.5, dash: "dash"}});
      }
      return {data: [{type: "bar", x: d.x, y: d.y, width: d.width, name: d.name,
                      marker: {color: cssVar("--accent"), opacity: 0.75},
                      hovertemplate: "%{x:.1%}: %{y} paths<extra></extra>"}],
              layout: layout({shapes: shapes, bargap: 0,
                              xaxis: {tickformat: d.tickformat || "", gridcolor: cssVar("--line")},
                              yaxis: {title: {text: "Paths"}, gridcolor: cssVar("--line")}})};
    }
  };

  function hexAlpha(color, alpha) {
    var m = /^#([0-9a-f]{6})$/i.exec(color);
    if (!m) { return color; }
    var n = parseInt(m[1], 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + alpha + ")";
  }

  function draw(el) {
    if (!window.Plotly) { return; }
    var data = readJson(el.getAttribute("data-source"));
    var build = builders[el.getAttribute("data-analysis-chart")];
    if (!data || !build) { return; }
    var figure = build(data, el);
    if (!figure) { return; }
    window.Plotly.react(el, figure.data, figure.layout,
                        {responsive: true, displaylogo: false, displayModeBar: false});
    el.dataset.drawn = "1";
  }

  function initCharts(scope) {
    scope.querySelectorAll("[data-analysis-chart]:not([data-drawn])").forEach(draw);
    scope.querySelectorAll("[data-heatmap-controls] select").forEach(function (select) {
      if (select.dataset.bound) { return; }
      select.dataset.bound = "1";
      select.addEventListener("change", function () {
        var box = select.closest("[data-heatmap-controls]");
        var chart = document.getElementById(box.getAttribute("data-heatmap-controls"));
        if (chart) { draw(chart); }
      });
    });
  }

  function redrawAll() {
    document.querySelectorAll("[data-analysis-chart][data-drawn]").forEach(draw);
  }
  document.addEventListener("nexow:themechange", redrawAll);
  if (window.matchMedia) {
    var dark = window.matchMedia("(prefers-color-scheme: dark)");
    if (dark.addEventListener) { dark.addEventListener("change", redrawAll); }
  }

  /* ------------------------------------------------------------- sortable table --- */

  function bindSorting(scope) {
    scope.querySelectorAll("table[data-sortable] th button[data-sort-col]").forEach(function (button) {
      if (button.dataset.bound) { return; }
      button.dataset.bound = "1";
      button.addEventListener("click", function () {
        var th = button.closest("th");
        var table = button.closest("table");
        var col = parseInt(button.getAttribute("data-sort-col"), 10);
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        table.querySelectorAll("th[aria-sort]").forEach(function (other) {
          other.setAttribute("aria-sort", "none");
        });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        function key(row) {
          var raw = row.cells[col].getAttribute("data-sort-value");
          var n = parseFloat(raw);
          return isNaN(n) ? raw : n;
        }
        rows.sort(function (a, b) {
          var ka = key(a), kb = key(b);
          var emptyA = ka === "" || ka === null, emptyB = kb === "" || kb === null;
          if (emptyA !== emptyB) { return emptyA ? 1 : -1; } /* undefined values last */
          if (ka < kb) { return ascending ? -1 : 1; }
          if (ka > kb) { return ascending ? 1 : -1; }
          return 0;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  }

  /* ------------------------------------------- live progress over the WebSocket --- */

  var FINAL = {"analysis.completed": "succeeded", "analysis.failed": "failed"};
  var FINISHED = {succeeded: true, failed: true, cancelled: true};

  /* Events of analyses reach the organisation's group (nothing to subscribe to). Their seq
     counts finished children (+1 for the final event), so a gap or a reconnection is caught up
     from the analysis row itself: the socket is a notification path, the row is the truth. */
  function receive(id, event, stream) {
    apply(id, {done: event.done, failed: event.failed, total: event.total,
               status: FINAL[event.type] || (event.type === "analysis.progress" ? "running" : null)});
    if (FINAL[event.type]) { stream.forget("analysis", id); }
  }

  function catchUp(id, stream) {
    return window.fetch("/api/v1/orgs/" + stream.org + "/analyses/" + id + "/",
                        {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (a) {
        var last = stream.seq("analysis", id);
        if (!a || last === undefined) { return false; }
        var seq = a.n_done + a.n_failed + (FINISHED[a.status] ? 1 : 0);
        if (seq > last) {
          stream.advance("analysis", id, seq);
          apply(id, {done: a.n_done, failed: a.n_failed, total: a.n_children, status: a.status});
          if (FINISHED[a.status]) { stream.forget("analysis", id); }
        }
        return false;
      });
  }

  function apply(id, state) {
    document.querySelectorAll('[data-analysis="' + id + '"]').forEach(function (el) {
      var total = state.total || parseInt(el.getAttribute("data-total") || "0", 10);
      var finished = (state.done || 0) + (state.failed || 0);
      if (total) {
        var pct = Math.round(finished / total * 100);
        var bar = el.querySelector("progress");
        if (bar) { bar.value = pct; bar.textContent = pct + "%"; }
        var label = el.querySelector("[data-progress-label]");
        if (label) { label.textContent = pct + "%"; }
        var count = el.querySelector("[data-children-label]");
        if (count) {
          count.textContent = finished + "/" + total + (state.failed ? ", " + state.failed + " failed" : "");
        }
      }
      var note = el.querySelector("[data-failed-note]");
      if (note && state.failed) {
        note.textContent = state.failed + " job(s) failed so far; the others go on.";
      }
      if (state.status) {
        el.querySelectorAll("[data-analysis-status]").forEach(function (badge) {
          badge.textContent = state.status;
          badge.className = "badge status-" + state.status;
        });
        el.setAttribute("data-status", state.status);
        if (FINISHED[state.status]) { finish(el); }
      }
    });
  }

  function finish(el) {
    var url = el.getAttribute("data-finish-url");
    var target = url && document.querySelector(el.getAttribute("data-finish-target"));
    if (!target) { return; }
    if (window.htmx) {
      window.htmx.ajax("GET", url, {target: target, swap: "outerHTML"});
    } else {
      window.location.reload();
    }
  }

  function bindLive(scope) {
    scope.querySelectorAll("[data-analysis][data-org]").forEach(function (el) {
      if (FINISHED[el.getAttribute("data-status")]) { return; }
      window.nexow.orgStream(el.getAttribute("data-org"))
        .kind("analysis", {catchUp: catchUp, apply: receive})
        .watch("analysis", el.getAttribute("data-analysis"),
               parseInt(el.getAttribute("data-seq") || "0", 10));
    });
  }

  function init(scope) {
    initCharts(scope);
    bindSorting(scope);
    bindLive(scope);
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  /* The results panel swapped in when an analysis finishes brings its charts and table. */
  document.addEventListener("htmx:afterSettle", function () { init(document); });
  /* plotly.js is deferred too and may arrive after DOMContentLoaded handlers of earlier files. */
  window.addEventListener("load", function () { initCharts(document); });
})();
