/* Nexow deployments, live: rows of the deployments list and the dashboard's card, and the
   deployment page (numbers, chart, books, controls), kept current from the organisation
   WebSocket (nexow.orgStream in portal.js, one socket per page). Every deployment event
   reaches the organisation's group, so the page subscribes to nothing: it follows the
   deployments it shows by their per-stream sequence numbers, re-fetches a gap from the REST
   event log and catches up after every reconnection.
   Loaded as a static file: the Content-Security-Policy forbids inline scripts. */
(function () {
  "use strict";

  var root = document.documentElement;

  function cssVar(name) {
    return getComputedStyle(root).getPropertyValue(name).trim();
  }

  function money(value) {
    return Number(value).toLocaleString("en-US", {minimumFractionDigits: 2,
                                                  maximumFractionDigits: 2});
  }

  function iso(ns) {
    return new Date(Math.floor(Number(ns) / 1e6)).toISOString().replace(/\.\d{3}Z$/, "Z");
  }

  function fill(el, text, className) {
    if (!el) { return; }
    el.textContent = text;
    if (className !== undefined) {
      el.classList.remove("pos", "neg");
      if (className) { el.classList.add(className); }
    }
  }

  function pnlText(equity, cash) {
    var pnl = equity - cash;
    var pct = cash ? (pnl / cash * 100).toFixed(2) + "%" : "";
    return {text: money(pnl) + (pct ? " (" + pct + ")" : ""),
            cls: pnl > 0 ? "pos" : (pnl < 0 ? "neg" : "")};
  }

  /* ------------------------------------------------- rows: the list and the dashboard --- */

  function updateRows(id, event) {
    document.querySelectorAll('[data-deployment-row][data-deployment="' + id + '"]')
      .forEach(function (row) {
        if (event.type === "deployment.step" && typeof event.equity === "number") {
          var pnl = pnlText(event.equity, Number(row.getAttribute("data-cash")));
          fill(row.querySelector('[data-field="equity"]'), money(event.equity));
          fill(row.querySelector('[data-field="pnl"]'), pnl.text, pnl.cls);
          if (event.last_bar_ts) {
            fill(row.querySelector('[data-field="last-bar"]'),
                 iso(event.last_bar_ts).replace("T", " ").replace("Z", " UTC"));
          }
        }
        if (event.type === "deployment.status" && event.status) {
          row.setAttribute("data-status", event.status);
          row.querySelectorAll("[data-dep-status]").forEach(function (badge) {
            badge.textContent = event.status.charAt(0).toUpperCase() + event.status.slice(1);
            badge.className = "badge status-" + event.status;
          });
        }
      });
  }

  /* ----------------------------------------------------------------- the deployment page --- */

  function throttled(fn, wait) {
    var timer = null;
    var again = false;
    return function () {
      if (timer) { again = true; return; }
      fn();
      timer = window.setTimeout(function tick() {
        if (again) { again = false; fn(); timer = window.setTimeout(tick, wait); }
        else { timer = null; }
      }, wait);
    };
  }

  function swap(url, selector) {
    var target = document.querySelector(selector);
    if (window.htmx && target) {
      window.htmx.ajax("GET", url, {target: target, swap: "outerHTML"});
    }
  }

  function DeploymentPage(el) {
    var self = this;
    this.el = el;
    this.cash = Number(el.getAttribute("data-cash"));
    this.symbol = el.getAttribute("data-symbol");
    this.chartEl = el.querySelector("[data-deployment-chart]");
    var source = document.getElementById(this.chartEl.getAttribute("data-chart-source"));
    this.data = source ? JSON.parse(source.textContent) : null;
    this.fetchingPrices = false;
    this.refreshBooks = throttled(function () {
      swap(el.getAttribute("data-books-url"), "#dep-books");
    }, 1000);
    this.refreshControls = throttled(function () {
      swap(el.getAttribute("data-controls-url"), "#dep-controls");
    }, 1000);
    this.draw();
    document.addEventListener("nexow:themechange", function () { self.draw(); });
    if (window.matchMedia) {
      var dark = window.matchMedia("(prefers-color-scheme: dark)");
      if (dark.addEventListener) { dark.addEventListener("change", function () { self.draw(); }); }
    }
  }

  DeploymentPage.prototype.draw = function () {
    var d = this.data;
    if (!window.Plotly || !d || (!d.price.x.length && !d.equity.x.length)) { return; }
    var empty = this.chartEl.querySelector(".chart-empty");
    if (empty) { empty.remove(); }
    var grid = cssVar("--line");
    var traces = [
      {type: "scatter", mode: "lines", x: d.price.x, y: d.price.close, name: d.symbol,
       line: {width: 1.5, color: cssVar("--ink")}, yaxis: "y"},
      {type: "scatter", mode: "markers", x: d.buys.x, y: d.buys.y, text: d.buys.text,
       name: "Buys", hoverinfo: "text+x", yaxis: "y",
       marker: {symbol: "triangle-up", size: 10, color: cssVar("--up")}},
      {type: "scatter", mode: "markers", x: d.sells.x, y: d.sells.y, text: d.sells.text,
       name: "Sells", hoverinfo: "text+x", yaxis: "y",
       marker: {symbol: "triangle-down", size: 10, color: cssVar("--down")}},
      {type: "scatter", mode: "lines", x: d.equity.x, y: d.equity.y, name: "Equity",
       line: {width: 1.6, color: cssVar("--accent")}, yaxis: "y2"}
    ];
    var layout = {
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: {color: cssVar("--ink"), family: "system-ui, sans-serif", size: 12},
      margin: {l: 64, r: 16, t: 8, b: 40}, hovermode: "closest",
      showlegend: true, legend: {orientation: "h", y: -0.12},
      xaxis: {gridcolor: grid, zerolinecolor: grid, anchor: "y2"},
      yaxis: {domain: [0.36, 1], gridcolor: grid, title: {text: "Price"}},
      yaxis2: window.nexow.moneyAxis(d.equity.y, {domain: [0, 0.28], gridcolor: grid,
                                                  title: {text: "Equity"}})
    };
    window.Plotly.react(this.chartEl, traces, layout,
                        {responsive: true, displaylogo: false, displayModeBar: false});
  };

  DeploymentPage.prototype.lastTs = function (series) {
    return series.ts.length ? series.ts[series.ts.length - 1] : null;
  };

  DeploymentPage.prototype.addPrices = function () {
    var self = this;
    if (this.fetchingPrices || !this.data) { return; }
    this.fetchingPrices = true;
    var after = this.lastTs(this.data.price);
    var url = this.el.getAttribute("data-prices-url") + (after !== null ? "&after=" + after : "");
    window.fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (points) {
        if (!points || !points.ts.length) { return; }
        var price = self.data.price;
        var last = self.lastTs(price);
        points.ts.forEach(function (ts, i) {
          if (last === null || ts > last) {
            price.ts.push(ts); price.x.push(points.x[i]); price.close.push(points.close[i]);
          }
        });
        self.draw();
      })
      .catch(function () { /* the next step asks again */ })
      .then(function () { self.fetchingPrices = false; });
  };

  DeploymentPage.prototype.apply = function (event) {
    var type = event.type;
    if (type === "deployment.step" && typeof event.equity === "number") {
      var pnl = pnlText(event.equity, this.cash);
      fill(this.el.querySelector('[data-field="equity"]'), money(event.equity));
      if (typeof event.cash === "number") {
        fill(this.el.querySelector('[data-field="cash"]'), money(event.cash));
      }
      fill(this.el.querySelector('[data-field="pnl"]'), pnl.text, pnl.cls);
      if (event.last_bar_ts) {
        fill(this.el.querySelector('[data-field="last-bar"]'),
             iso(event.last_bar_ts).replace("T", " ").replace("Z", ""));
        var equity = this.data && this.data.equity;
        var last = equity ? this.lastTs(equity) : null;
        if (equity && (last === null || event.last_bar_ts > last)) {
          equity.ts.push(event.last_bar_ts); equity.x.push(iso(event.last_bar_ts));
          equity.y.push(event.equity);
        }
        this.addPrices();  /* redraws when the closes arrive */
      }
      this.refreshBooks();  /* positions are valued at the new close */
    } else if (type === "deployment.fill") {
      var side = event.side === "buy" ? this.data && this.data.buys : this.data && this.data.sells;
      var ts = event.timestamp || event.ts;
      if (side && event.symbol === this.symbol && ts) {
        side.ts.push(ts); side.x.push(iso(ts)); side.y.push(event.price);
        side.text.push(event.side + " " + event.quantity + " @ " + event.price);
        this.draw();
      }
      this.refreshBooks();
    } else if (type === "deployment.order" || type === "deployment.cancel" ||
               type === "deployment.refused") {
      this.refreshBooks();
    } else if (type === "deployment.status" || type === "deployment.halt") {
      if (event.status) { this.el.setAttribute("data-status", event.status); }
      this.refreshControls();
      this.refreshBooks();
    }
  };

  /* ------------------------------------------------------------------------- start-up --- */

  document.addEventListener("DOMContentLoaded", function () {
    var nodes = document.querySelectorAll("[data-deployment][data-org]");
    if (!nodes.length) { return; }
    var pageEl = document.querySelector("[data-deployment-page]");
    var page = pageEl ? new DeploymentPage(pageEl) : null;
    var pageId = pageEl ? pageEl.getAttribute("data-deployment") : null;
    var stream = window.nexow.orgStream(nodes[0].getAttribute("data-org"));
    stream.kind("deployment", {catchUp: "deployments", apply: function (id, event) {
      updateRows(id, event);
      if (page && id === pageId) { page.apply(event); }
    }});
    nodes.forEach(function (el) {
      if (el.getAttribute("data-status") === "stopped") { return; }
      stream.watch("deployment", el.getAttribute("data-deployment"),
                   parseInt(el.getAttribute("data-seq") || "0", 10));
    });
  });
})();
