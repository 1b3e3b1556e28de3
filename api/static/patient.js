// Trend charts (Plotly, from the plotly package on PyPI): one panel per metric on a shared
// time axis; zooming fetches finer buckets for the visible range. Month and day names come
// from the browser's Intl in the page's language, so a French or Chinese page never shows
// English dates.
"use strict";

(() => {
  const chart = document.getElementById("chart");
  const patient = document.getElementById("patient");
  if (!chart || !patient || !window.Plotly) return;
  // the clinician's zone comes from their account; a shared page uses the browser's
  const viewerZone = document.body.dataset.viewerZone || Intl.DateTimeFormat().resolvedOptions().timeZone;
  const patientZone = patient.dataset.patientZone;
  // read at each load: the live page adds the questionnaire's metrics when answers arrive
  const metricsShown = () => chart.dataset.metrics.split(",").filter(Boolean);
  const json = (text, fallback) => { try { return JSON.parse(text || ""); } catch { return fallback; } };
  const labels = json(chart.dataset.labels, {});
  const units = json(chart.dataset.units, {});
  const bands = json(chart.dataset.bands, {});
  const lang = document.body.dataset.locale || document.documentElement.lang || "en";
  const base = chart.dataset.trendsUrl || `/api/v1/patients/${patient.dataset.patientId}/trends`;
  // 'sv-SE' formats as YYYY-MM-DD HH:MM:SS, which Plotly reads as a wall-clock time
  const inZone = (zone) => new Intl.DateTimeFormat("sv-SE", {
    timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  const viewerFmt = inZone(viewerZone);
  const hoverFmt = new Intl.DateTimeFormat(lang, { timeZone: patientZone, dateStyle: "medium", timeStyle: "short" });
  const toUtc = (wall) => {
    // a wall-clock time in the viewer's zone back to UTC (zoom ranges)
    const guess = new Date(wall.replace(" ", "T") + "Z");
    const shown = new Date(viewerFmt.format(guess).replace(" ", "T") + "Z");
    return new Date(guess.getTime() - (shown.getTime() - guess.getTime()));
  };

  // a Plotly locale built from Intl for this page's language
  const localeName = "page-" + lang;
  (() => {
    const names = (opts, n, make) => Array.from({ length: n }, (_, i) =>
      new Intl.DateTimeFormat(lang, { ...opts, timeZone: "UTC" }).format(make(i)));
    const month = (i) => new Date(Date.UTC(2021, i, 15));
    const day = (i) => new Date(Date.UTC(2021, 0, 3 + i)); // 3 Jan 2021 was a Sunday
    const parts = new Intl.NumberFormat(lang).formatToParts(12345.6);
    Plotly.register({
      moduleType: "locale", name: localeName, dictionary: {},
      format: {
        months: names({ month: "long" }, 12, month), shortMonths: names({ month: "short" }, 12, month),
        days: names({ weekday: "long" }, 7, day), shortDays: names({ weekday: "short" }, 7, day),
        decimal: parts.find((p) => p.type === "decimal")?.value || ".",
        thousands: parts.find((p) => p.type === "group")?.value || ",",
        date: "%x",
      },
    });
  })();

  let drawn = false;
  const buttons = document.querySelectorAll("button.range");

  async function load(query) {
    const params = new URLSearchParams(query);
    metricsShown().forEach((m) => params.append("metric", m));
    const res = await fetch(`${base}?${params}`, { credentials: "same-origin" });
    if (!res.ok) { chart.textContent = chart.dataset.failed || `HTTP ${res.status}`; return; }
    const data = await res.json();
    const traces = [];
    const n = data.series.length;
    const gap = 0.1;
    const each = (1 - gap * (n - 1)) / n;
    const layout = {
      height: 210 * n + 60, margin: { l: 64, r: 24, t: 24, b: 50 }, showlegend: false,
      hovermode: "x unified", separators: undefined, annotations: [], shapes: [],
    };
    let empty = true;
    data.series.forEach((s, i) => {
      const axis = i === 0 ? "" : String(i + 1);
      const top = 1 - i * (each + gap);
      const unit = units[s.metric] ?? s.unit;
      const name = labels[s.metric] || s.label || "";
      if (s.points.length) empty = false;
      const x = s.points.map((p) => viewerFmt.format(new Date(p.t)));
      const local = s.points.map((p) => hoverFmt.format(new Date(p.t)));
      const common = { x, xaxis: "x", yaxis: `y${axis}`, type: "scatter", mode: "lines", hoverinfo: "skip" };
      traces.push({ ...common, y: s.points.map((p) => p.min), line: { width: 0 } });
      traces.push({ ...common, y: s.points.map((p) => p.max), fill: "tonexty", line: { width: 0 },
                    fillcolor: "rgba(31,119,180,0.15)" });
      traces.push({ x, xaxis: "x", yaxis: `y${axis}`, type: "scatter", mode: "lines+markers",
                    marker: { size: 3 }, y: s.points.map((p) => p.avg), customdata: local, name,
                    hovertemplate: `%{y:.1f} ${unit}<br>%{customdata}<extra>${name}</extra>` });
      layout[`yaxis${axis}`] = { domain: [Math.max(0, top - each), top], anchor: "x",
                                 title: { text: unit, font: { size: 11 }, standoff: 4 }, automargin: true };
      layout.annotations.push({ text: `<b>${name}</b>` + (unit ? ` (${unit})` : ""), xref: "paper", yref: "paper",
                                x: 0, y: top, xanchor: "left", yanchor: "bottom", showarrow: false, font: { size: 12 } });
      (bands[s.metric] || []).forEach((v) => layout.shapes.push({
        type: "line", xref: "paper", x0: 0, x1: 1, yref: `y${axis}`, y0: v, y1: v,
        line: { color: "rgba(176,0,32,0.6)", width: 1, dash: "dash" },
      }));
    });
    layout.xaxis = { type: "date", anchor: n > 1 ? `y${n}` : "y", automargin: true };
    const config = { responsive: true, displaylogo: false, locale: localeName };
    if (drawn) await Plotly.react(chart, traces, layout, config);
    else await Plotly.newPlot(chart, traces, layout, config);
    chart.dataset.bucketS = data.bucket_s;
    chart.dataset.points = data.series.reduce((k, s) => k + s.points.length, 0);
    let note = document.getElementById("chart-empty");
    if (!note) { note = document.createElement("p"); note.id = "chart-empty"; note.className = "muted"; chart.before(note); }
    note.textContent = empty ? (chart.dataset.empty || "") : "";
    if (!drawn) {
      chart.on("plotly_relayout", (ev) => {
        const a = ev["xaxis.range[0]"], b = ev["xaxis.range[1]"];
        if (a && b) {
          buttons.forEach((x) => x.setAttribute("aria-pressed", "false"));
          load({ start: toUtc(a).toISOString(), end: toUtc(b).toISOString() });
        }
      });
      drawn = true;
    }
    chart.classList.add("ready");
  }

  buttons.forEach((b) => b.addEventListener("click", () => {
    buttons.forEach((x) => x.setAttribute("aria-pressed", String(x === b)));
    load({ range: b.dataset.range });
  }));
  if (buttons[0]) buttons[0].setAttribute("aria-pressed", "true");
  load({ range: "24h" });
  // new data announced by the live events (patient_live.js): redraw the period shown
  document.addEventListener("postop:data-changed", () => {
    const on = [...buttons].find((b) => b.getAttribute("aria-pressed") === "true");
    load({ range: on ? on.dataset.range : "24h" });
  });
})();
