/* Nexow portal behaviour: theme toggle, navigation drawer, flash messages, live simulation
   updates over the organisation WebSocket (with gap detection and REST catch-up) and the plotly
   charts. Loaded as a static file: the Content-Security-Policy forbids inline scripts. */
(function () {
  "use strict";

  var root = document.documentElement;
  var THEME_KEY = "nexow.theme";
  var darkQuery = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function currentTheme() {
    var chosen = root.getAttribute("data-theme");
    if (chosen === "light" || chosen === "dark") { return chosen; }
    return darkQuery && darkQuery.matches ? "dark" : "light";
  }

  function labelThemeToggles() {
    var next = currentTheme() === "dark" ? "light" : "dark";
    document.querySelectorAll("[data-theme-toggle]").forEach(function (button) {
      button.setAttribute("aria-label", "Switch to " + next + " theme");
      button.setAttribute("data-current", currentTheme());
    });
  }

  function setTheme(theme) {
    root.setAttribute("data-theme", theme);
    try { window.localStorage.setItem(THEME_KEY, theme); } catch (e) { /* not stored */ }
    labelThemeToggles();
    document.dispatchEvent(new CustomEvent("nexow:themechange", {detail: {theme: theme}}));
  }

  function bindChrome(scope) {
    scope.querySelectorAll("[data-theme-toggle]").forEach(function (button) {
      if (button.dataset.bound) { return; }
      button.dataset.bound = "1";
      button.addEventListener("click", function () {
        setTheme(currentTheme() === "dark" ? "light" : "dark");
      });
    });
    scope.querySelectorAll(".nav-toggle").forEach(function (button) {
      if (button.dataset.bound) { return; }
      button.dataset.bound = "1";
      button.addEventListener("click", function () {
        var nav = document.getElementById(button.getAttribute("aria-controls"));
        var open = button.getAttribute("aria-expanded") !== "true";
        button.setAttribute("aria-expanded", open ? "true" : "false");
        if (nav) { nav.classList.toggle("open", open); }
      });
    });
    scope.querySelectorAll("[data-dismiss]").forEach(function (button) {
      if (button.dataset.bound) { return; }
      button.dataset.bound = "1";
      button.addEventListener("click", function () {
        var item = button.closest("li, .alert");
        if (item) { item.remove(); }
      });
    });
    scope.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
      if (select.dataset.bound) { return; }
      select.dataset.bound = "1";
      select.addEventListener("change", function () { select.form.submit(); });
    });
    scope.querySelectorAll("form[data-autosubmit] button[type=submit]").forEach(function (b) {
      b.classList.add("no-js-only");
    });
    scope.querySelectorAll("[data-kind-switch]").forEach(function (select) {
      if (select.dataset.bound) { return; }
      select.dataset.bound = "1";
      select.addEventListener("change", function () {
        var url = new URL(window.location.href);
        url.searchParams.set("kind", select.value);
        window.location.assign(url.toString());
      });
    });
  }

  /* ---------------------------------------------------------------- charts (plotly.js) --- */

  function cssVar(name) {
    return getComputedStyle(root).getPropertyValue(name).trim();
  }

  function baseLayout(extra) {
    var layout = {
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: {color: cssVar("--ink"), family: "system-ui, sans-serif", size: 12},
      margin: {l: 56, r: 16, t: 16, b: 40},
      xaxis: {gridcolor: cssVar("--line"), zerolinecolor: cssVar("--line")},
      yaxis: {gridcolor: cssVar("--line"), zerolinecolor: cssVar("--line")},
      showlegend: false,
      hovermode: "x unified"
    };
    return Object.assign(layout, extra || {});
  }

  function readJson(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  var builders = {
    candles: function (d) {
      return {
        data: [
          {type: "candlestick", x: d.x, open: d.open, high: d.high, low: d.low, close: d.close,
           name: d.symbol, xaxis: "x", yaxis: "y",
           increasing: {line: {color: cssVar("--up")}}, decreasing: {line: {color: cssVar("--down")}}},
          {type: "bar", x: d.x, y: d.volume, name: "Volume", xaxis: "x", yaxis: "y2",
           marker: {color: cssVar("--muted"), opacity: 0.5}}
        ],
        layout: baseLayout({
          grid: {rows: 2, columns: 1, roworder: "top to bottom"},
          xaxis: {rangeslider: {visible: false}, gridcolor: cssVar("--line"), anchor: "y2"},
          yaxis: {domain: [0.3, 1], gridcolor: cssVar("--line"), title: {text: "Price"}},
          yaxis2: {domain: [0, 0.22], gridcolor: cssVar("--line"), title: {text: "Volume"}}
        })
      };
    },
    line: function (d) {
      var series = d.series || [{x: d.x, y: d.y, name: d.name}];
      return {
        data: series.map(function (s, i) {
          return {type: "scatter", mode: "lines", x: s.x, y: s.y, name: s.name,
                  fill: d.fill || "none",
                  line: {width: 1.6, color: i === 0 ? cssVar(d.color || "--accent") : undefined}};
        }),
        layout: baseLayout({showlegend: series.length > 1,
                            legend: {orientation: "h", y: -0.2},
                            yaxis: {gridcolor: cssVar("--line"), tickformat: d.tickformat || "",
                                    title: {text: d.ytitle || ""}}})
      };
    },
    heatmap: function (d) {
      return {
        data: [{type: "heatmap", x: d.months, y: d.years, z: d.z, text: d.text,
                texttemplate: "%{text}", hoverongaps: false, zmid: 0,
                colorscale: [[0, cssVar("--down")], [0.5, cssVar("--paper")], [1, cssVar("--up")]],
                showscale: false}],
        layout: baseLayout({yaxis: {type: "category", autorange: "reversed", showgrid: false},
                            xaxis: {type: "category", side: "top", showgrid: false},
                            margin: {l: 56, r: 16, t: 32, b: 16}, hovermode: "closest"})
      };
    }
  };

  function drawChart(el) {
    if (!window.Plotly) { return; }
    var data = readJson(el.getAttribute("data-chart-source"));
    var build = builders[el.getAttribute("data-chart")];
    if (!data || !build) { return; }
    var figure = build(data);
    window.Plotly.react(el, figure.data, figure.layout,
                        {responsive: true, displaylogo: false, displayModeBar: false});
    el.dataset.drawn = "1";
  }

  function initCharts(scope) {
    scope.querySelectorAll("[data-chart]:not([data-drawn])").forEach(drawChart);
  }

  document.addEventListener("nexow:themechange", function () {
    document.querySelectorAll("[data-chart][data-drawn]").forEach(drawChart);
  });
  if (darkQuery && darkQuery.addEventListener) {
    darkQuery.addEventListener("change", function () {
      labelThemeToggles();
      document.querySelectorAll("[data-chart][data-drawn]").forEach(drawChart);
    });
  }

  /* ----------------------------------------------- the organisation's event stream --- */

  /* One WebSocket per page for every live object it shows: simulations, analyses and
     deployments. Each object's events carry its stream's sequence number: an event already seen
     is dropped, a gap is filled from REST, and every (re)connection catches up (backoff 1 s to
     30 s; none after 4401/4404: signed out, or no access). A kind of object registers the name
     its events' stream starts with ("simulation" for "simulation.42"), how to apply an event
     (apply(id, event, stream)), how to catch up (the path of a REST event log, or
     catchUp(id, stream) resolving to "there is more"), and the stream to subscribe to when its
     events do not reach the organisation's group anyway. The socket is a notification path
     only: REST is the truth. */
  var streams = {};

  function OrgStream(org) {
    this.org = org;
    this.kinds = {};     /* field -> {apply, catchUp, subscribe} */
    this.last = {};      /* "field:id" -> last applied seq */
    this.busy = {};
    this.socket = null;
    this.delay = 1000;
  }

  OrgStream.prototype.kind = function (field, spec) {
    this.kinds[field] = spec;
    return this;
  };

  OrgStream.prototype.watch = function (field, id, seq) {
    var key = field + ":" + id;
    if (this.last[key] === undefined || seq > this.last[key]) { this.last[key] = seq; }
    if (this.socket && this.socket.readyState === WebSocket.OPEN) { this.subscribe(field, id); }
    else if (!this.socket) { this.connect(); }
  };

  OrgStream.prototype.seq = function (field, id) { return this.last[field + ":" + id]; };

  OrgStream.prototype.advance = function (field, id, seq) { this.last[field + ":" + id] = seq; };

  OrgStream.prototype.forget = function (field, id) { delete this.last[field + ":" + id]; };

  OrgStream.prototype.subscribe = function (field, id) {
    var stream = this.kinds[field].subscribe;
    if (stream) {
      this.socket.send(JSON.stringify({action: "subscribe", stream: stream + "." + id}));
    }
  };

  OrgStream.prototype.connect = function () {
    var self = this;
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + "/ws/v1/orgs/" + this.org + "/");
    this.socket = socket;
    socket.addEventListener("open", function () {
      self.delay = 1000;
      Object.keys(self.last).forEach(function (key) {
        var at = key.indexOf(":"), field = key.slice(0, at), id = key.slice(at + 1);
        self.subscribe(field, id);
        self.catchUp(field, id); /* anything missed while disconnected */
      });
    });
    socket.addEventListener("message", function (msg) {
      var event;
      try { event = JSON.parse(msg.data); } catch (e) { return; }
      /* "stream" is "<kind>.<id>", e.g. "simulation.42". */
      if (event.seq === undefined || typeof event.stream !== "string") { return; }
      var dot = event.stream.lastIndexOf(".");
      var field = event.stream.slice(0, dot);
      if (dot > 0 && self.kinds[field]) { self.receive(field, event.stream.slice(dot + 1), event); }
    });
    socket.addEventListener("close", function (closed) {
      self.socket = null;
      if (closed.code === 4401 || closed.code === 4404) { return; }
      if (!Object.keys(self.last).length) { return; }
      window.setTimeout(function () { self.connect(); }, self.delay);
      self.delay = Math.min(self.delay * 2, 30000);
    });
  };

  OrgStream.prototype.receive = function (field, id, event) {
    var last = this.seq(field, id);
    if (last === undefined || event.seq <= last) { return; }     /* not shown, or already seen */
    if (event.seq > last + 1) { this.catchUp(field, id); return; } /* a gap: ask REST */
    this.advance(field, id, event.seq);
    this.kinds[field].apply(id, event, this);
  };

  OrgStream.prototype.catchUp = function (field, id) {
    var self = this, key = field + ":" + id, spec = this.kinds[field];
    if (this.busy[key] || this.last[key] === undefined) { return; }
    this.busy[key] = true;
    var done = typeof spec.catchUp === "function" ? spec.catchUp(id, this)
      : this.catchUpFromLog(field, spec.catchUp, id);
    done.catch(function () { return false; /* the next event or reconnection tries again */ })
      .then(function (more) {
        self.busy[key] = false;
        if (more) { self.catchUp(field, id); } /* the log had more than one page */
      });
  };

  /* The object's REST event log from the last applied seq; resolves to "there is more". */
  OrgStream.prototype.catchUpFromLog = function (field, path, id) {
    var self = this, spec = this.kinds[field];
    var since = this.seq(field, id);
    var url = "/api/v1/orgs/" + this.org + "/" + path + "/" + id + "/events/?since=" + since;
    return window.fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (response) { return response.ok ? response.json() : {events: []}; })
      .then(function (page) {
        var events = page.events || [];
        events.forEach(function (event) {
          if (event.seq === self.seq(field, id) + 1) {
            self.advance(field, id, event.seq);
            var flat = Object.assign({}, event.payload || {}, event);
            flat[field] = Number(id);
            spec.apply(id, flat, self);
          }
        });
        return page.last_seq > self.seq(field, id) && events.length > 0;
      });
  };

  /* The page's stream for an organisation (one socket, shared by every kind). */
  function orgStream(org) {
    if (!streams[org]) { streams[org] = new OrgStream(org); }
    return streams[org];
  }

  /* ------------------------------------------------ live simulations over the WebSocket --- */

  var FINISHED = {succeeded: true, failed: true, cancelled: true};

  function applyEvent(simId, event) {
    var status = event.status;
    var progress = typeof event.progress === "number" ? event.progress : null;
    document.querySelectorAll('[data-sim="' + simId + '"]').forEach(function (el) {
      if (progress !== null) {
        var pct = Math.round(progress * 100);
        var bar = el.querySelector("progress");
        if (bar) { bar.value = pct; bar.textContent = pct + "%"; }
        var label = el.querySelector("[data-progress-label]");
        if (label) { label.textContent = pct + "%"; }
      }
      if (status) {
        el.querySelectorAll("[data-sim-status]").forEach(function (badge) {
          badge.textContent = status;
          badge.className = "badge status-" + status;
        });
        el.setAttribute("data-status", status);
      }
      el.setAttribute("data-seq", String(event.seq));
    });
    document.dispatchEvent(new CustomEvent("nexow:simulation", {detail: {id: simId, event: event}}));
    if (status && FINISHED[status]) { onFinished(simId); }
  }

  function onFinished(simId) {
    document.querySelectorAll('[data-sim="' + simId + '"][data-finish-url]').forEach(function (el) {
      var target = document.querySelector(el.getAttribute("data-finish-target"));
      if (window.htmx && target) {
        window.htmx.ajax("GET", el.getAttribute("data-finish-url"), {target: target, swap: "outerHTML"});
      }
    });
  }

  /* The equity curve that grows while a run is in progress. */
  document.addEventListener("nexow:simulation", function (e) {
    var chart = document.querySelector('[data-live-equity="' + e.detail.id + '"]');
    var event = e.detail.event;
    if (!chart || !window.Plotly || typeof event.equity !== "number") { return; }
    if (!chart.dataset.drawn) {
      window.Plotly.newPlot(chart, [{type: "scatter", mode: "lines", x: [], y: [],
                                     line: {width: 1.6, color: cssVar("--accent")}}],
                            baseLayout({xaxis: {title: {text: "Bar"}, gridcolor: cssVar("--line")}}),
                            {responsive: true, displaylogo: false, displayModeBar: false});
      chart.dataset.drawn = "1";
      var empty = chart.parentNode.querySelector("[data-live-empty]");
      if (empty) { empty.remove(); }
    }
    window.Plotly.extendTraces(chart, {x: [[event.bar || 0]], y: [[event.equity]]}, [0]);
  });

  function bindLive(scope) {
    var nodes = scope.querySelectorAll("[data-sim][data-org]");
    nodes.forEach(function (el) {
      var status = el.getAttribute("data-status");
      if (status && FINISHED[status]) { return; }
      orgStream(el.getAttribute("data-org"))
        .kind("simulation", {subscribe: "simulation", catchUp: "simulations", apply: applyEvent})
        .watch("simulation", el.getAttribute("data-sim"),
               parseInt(el.getAttribute("data-seq") || "0", 10));
    });
  }

  function init(scope) {
    bindChrome(scope);
    initCharts(scope);
    bindLive(scope);
  }

  document.addEventListener("DOMContentLoaded", function () {
    labelThemeToggles();
    init(document);
  });
    /* Swapped fragments (results panel, trades pages) may bring charts and live rows. */
  document.addEventListener("htmx:afterSettle", function () { init(document); });
  /* A y axis for money: thousands separators instead of SI suffixes ("100.001k"), room for
     the labels, and, for a flat series, a range of 1 % either side (Plotly would otherwise
     zoom into rounding noise and print the same amount on every tick). */
  function moneyAxis(values, extra) {
    var axis = Object.assign({automargin: true}, extra || {});
    var finite = (values || []).filter(function (v) { return v !== null && isFinite(v); });
    if (!finite.length) { return axis; }
    var lo = Math.min.apply(null, finite), hi = Math.max.apply(null, finite);
    axis.tickformat = Math.max(Math.abs(lo), Math.abs(hi)) >= 1000 ? ",.0f" : ",.2f";
    if (hi - lo <= Math.abs(hi) * 1e-6) {
      var pad = Math.max(Math.abs(hi) * 0.01, 1);
      axis.range = [lo - pad, hi + pad];
    }
    return axis;
  }

  window.nexow = {setTheme: setTheme, currentTheme: currentTheme, moneyAxis: moneyAxis,
                  orgStream: orgStream};
})();
