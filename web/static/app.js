// tokenvault web UI: live token countdowns and copy buttons. Everything
// else works without JavaScript.
"use strict";
(function () {
  function tick() {
    var now = Date.now() / 1000;
    document.querySelectorAll(".countdown[data-expires]").forEach(function (el) {
      var left = Math.floor(Number(el.dataset.expires) - now);
      el.textContent = left > 0 ? left + " " + el.dataset.suffix : el.dataset.expired;
    });
  }
  function copy(button) {
    var source = document.getElementById(button.dataset.copy);
    if (!source || !navigator.clipboard) {
      return;
    }
    navigator.clipboard.writeText(source.textContent).then(function () {
      var label = button.textContent;
      button.textContent = button.dataset.copied;
      setTimeout(function () { button.textContent = label; }, 2000);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);
    document.querySelectorAll("button.copy[data-copy]").forEach(function (b) {
      b.addEventListener("click", function () { copy(b); });
    });
  });
})();

// Service health page: poll the JSON endpoint every few seconds and update
// the values marked with data-field, and the replicas table, in place.
(function () {
  function labels() {
    var map = {};
    document.querySelectorAll("#health-labels [data-key]").forEach(function (li) {
      map[li.dataset.key] = li.textContent;
    });
    return map;
  }
  function pick(obj, path) {
    return path.split(".").reduce(function (o, k) { return o == null ? null : o[k]; }, obj);
  }
  function format(value, how, text) {
    if (value === null || value === undefined) { return text.none; }
    switch (how) {
      case "pct": return (value * 100).toFixed(1) + " %";
      case "ms": return value.toFixed(1) + " ms";
      case "s": return value.toFixed(1) + " s";
      case "label": return text[String(value)] || String(value);
      case "up": return text[value ? "ok" : "down"];
      case "time": return new Date(value).toISOString().replace("T", " ").slice(0, 19) + " UTC";
      default: return String(value);
    }
  }
  function cell(row, label, text, css) {
    var td = document.createElement("td");
    td.dataset.label = label;
    if (css) {
      var inner = document.createElement(css === "code" ? "code" : "span");
      if (css !== "code") { inner.className = css; }
      inner.textContent = text;
      td.appendChild(inner);
    } else {
      td.textContent = text;
    }
    row.appendChild(td);
  }
  function replicas(body, items, text) {
    var names = body.dataset.labels.split("|");
    var hosts = body.dataset.hosts === "1";
    var rows = items.map(function (r) {
      var tr = document.createElement("tr");
      cell(tr, names[0], r.id, "code");
      if (hosts) { cell(tr, names[1], r.host || text.none); }
      cell(tr, names[2], r.version);
      cell(tr, names[3], body.dataset.ago.replace("{n}", r.seconds_since_seen.toFixed(1)) +
        " · " + format(r.last_seen_at, "time", text));
      cell(tr, names[4], format(r.started_at, "time", text));
      cell(tr, names[5], text[r.alive ? "alive" : "stale"], "badge badge-" + (r.alive ? "alive" : "stale"));
      return tr;
    });
    if (!rows.length) {
      var tr = document.createElement("tr");
      cell(tr, "", body.dataset.empty, "muted");
      rows.push(tr);
    }
    body.replaceChildren.apply(body, rows);
  }
  function render(h, text) {
    document.querySelectorAll("[data-field]").forEach(function (el) {
      var value = pick(h, el.dataset.field);
      el.textContent = format(value, el.dataset.format, text);
      if (el.classList.contains("badge")) {
        var state = typeof value === "boolean" ? (value ? "ok" : "down") : (value || "down");
        el.className = "badge badge-" + state;
      }
    });
    var body = document.getElementById("replica-rows");
    if (body) { replicas(body, h.replicas.items, text); }
  }
  document.addEventListener("DOMContentLoaded", function () {
    var live = document.getElementById("health-live");
    if (!live || !window.fetch) { return; }
    var text = labels();
    var status = document.getElementById("health-conn");
    function poll() {
      if (document.hidden) { return; }
      fetch(live.dataset.source, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (res) {
          if (!res.ok) { throw new Error(String(res.status)); }
          return res.json();
        })
        .then(function (h) { render(h, text); status.textContent = text.live; })
        .catch(function () { status.textContent = text.lost; });
    }
    setInterval(poll, Number(live.dataset.interval) || 5000);
  });
})();

// Times: every <time class="when" datetime="…Z"> (UTC, as the server writes
// it) is shown in the viewer's time zone with a relative time beside it
// ("in 12 min", "3 hours ago"); the UTC text stays as the tooltip. Without
// JavaScript the page shows UTC.
(function () {
  var units = [["year", 31536000], ["month", 2592000], ["day", 86400],
               ["hour", 3600], ["minute", 60], ["second", 1]];
  function relative(rtf, seconds) {
    for (var i = 0; i < units.length; i++) {
      if (Math.abs(seconds) >= units[i][1] || units[i][0] === "second") {
        return rtf.format(Math.round(seconds / units[i][1]), units[i][0]);
      }
    }
    return "";
  }
  function render() {
    if (!window.Intl || !Intl.DateTimeFormat || !Intl.RelativeTimeFormat) {
      return;
    }
    var lang = document.documentElement.lang || "en";
    var options = {
      year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
      minute: "2-digit", second: "2-digit", hour12: false, timeZoneName: "short"
    };
    // The zone the person chose on the account page, else the browser's.
    var zone = document.documentElement.dataset.timeZone;
    var absolute;
    try {
      absolute = new Intl.DateTimeFormat(lang, zone ? Object.assign({ timeZone: zone }, options) : options);
    } catch (e) {
      absolute = new Intl.DateTimeFormat(lang, options);
    }
    var rtf = new Intl.RelativeTimeFormat(lang, { numeric: "auto", style: "short" });
    var now = Date.now();
    document.querySelectorAll("time.when[datetime]").forEach(function (el) {
      var at = new Date(el.getAttribute("datetime"));
      if (isNaN(at.getTime())) {
        return;
      }
      el.textContent = absolute.format(at) + " · " + relative(rtf, (at.getTime() - now) / 1000);
      el.dataset.local = "true";
    });
    charts(lang, zone);
  }
  // Chart marks, bars and band pieces carry their instants (data-from,
  // data-to) and the rest of their label: relabel their tooltip, their
  // accessible name and their readout in the same zone.
  function charts(lang, zone) {
    var nodes = document.querySelectorAll("svg [data-from]");
    if (!nodes.length) {
      return;
    }
    function formatter(date) {
      var o = { hour: "2-digit", minute: "2-digit", hour12: false };
      if (date) {
        o.month = "2-digit";
        o.day = "2-digit";
      }
      try {
        return new Intl.DateTimeFormat(lang, zone ? Object.assign({ timeZone: zone }, o) : o);
      } catch (e) {
        return new Intl.DateTimeFormat(lang, o);
      }
    }
    var short = { "": formatter(false), "1": formatter(true) };
    var named;
    try {
      named = new Intl.DateTimeFormat(lang, zone ? { timeZone: zone, timeZoneName: "short" } : { timeZoneName: "short" });
    } catch (e) {
      named = new Intl.DateTimeFormat(lang, { timeZoneName: "short" });
    }
    nodes.forEach(function (el) {
      var from = new Date(el.dataset.from);
      if (isNaN(from.getTime())) {
        return;
      }
      var f = short[el.dataset.date || ""];
      var label = f.format(from);
      if (el.dataset.to) {
        var to = new Date(el.dataset.to);
        label += "–" + (isNaN(to.getTime()) ? "" : f.format(to));
      }
      var zonePart = named.formatToParts(from).filter(function (p) { return p.type === "timeZoneName"; })[0];
      label += (zonePart ? " " + zonePart.value : "") + (el.dataset.rest || "");
      var title = el.querySelector("title");
      if (title) {
        title.textContent = label;
      }
      if (el.hasAttribute("aria-label")) {
        el.setAttribute("aria-label", label);
      }
      var readout = el.querySelector(".readout");
      if (readout) {
        readout.textContent = label;
      }
      el.dataset.local = "true";
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    render();
    setInterval(render, 15000);
    // The account page names the browser's own zone (the default).
    document.querySelectorAll(".browser-zone").forEach(function (el) {
      el.textContent = "(" + Intl.DateTimeFormat().resolvedOptions().timeZone + ")";
    });
  });
})();
