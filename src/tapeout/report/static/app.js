// tapeout's page: renders what the JSON API (or a report's inlined data) says; it computes no physics.
// Every number shown comes from Prediction.to_dict(), SimResult.to_dict() or an exploration run's rows;
// the page only formats, sums rows for the breakdown charts, and sorts/filters tables.
"use strict";
(function () {
  const REPORT = window.TAPEOUT_REPORT || null;
  const t0 = performance.now();
  const $ = (sel, el) => (el || document).querySelector(sel);
  const $$ = (sel, el) => Array.from((el || document).querySelectorAll(sel));
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  const state = {options: null, compare: [], explore: null, lastBody: null};

  // ---- formatting: the CLI's (report/fmt.py) -------------------------------------------------------
  const fmt = {
    seconds(x) { if (x == null) return "-"; if (x >= 1) return x.toFixed(3) + " s"; if (x >= 1e-3) return (x * 1e3).toFixed(3) + " ms"; return (x * 1e6).toFixed(1) + " µs"; },
    nbytes(x) { if (x == null) return "-"; for (const [u, f] of [["TB", 1e12], ["GB", 1e9], ["MB", 1e6], ["kB", 1e3]]) if (Math.abs(x) >= f) return (x / f).toFixed(2) + " " + u; return x.toFixed(0) + " B"; },
    count(x) { if (x == null) return "-"; for (const [u, f] of [["T", 1e12], ["G", 1e9], ["M", 1e6], ["k", 1e3]]) if (Math.abs(x) >= f) return (x / f).toFixed(2) + u; return x.toFixed(0); },
    num(x, d) { return x == null ? "-" : (typeof x === "number" ? (Number.isInteger(x) ? String(x) : x.toPrecision(d || 4)) : String(x)); },
    rate(x) { return x == null ? "-" : x.toFixed(1) + " tok/s"; },
    shape(d) { return Object.entries(d || {}).map(([k, v]) => k + "=" + v).join(" "); },
  };

  function status(msg, error) { const s = $("#status"); s.textContent = msg || ""; s.className = error ? "error" : ""; }

  async function api(path, body) {
    const res = await fetch(path, body === undefined ? {} : {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    const data = await res.json();
    if (!res.ok) throw new Error(data.detail || res.statusText);
    return data;
  }

  // charts wait for plotly.js, which loads after the numbers and tables are on screen
  const pending = [];
  let plotlyDone = false;
  function plot(el, traces, layout, config, after) {
    if (!window.Plotly) {
      if (!plotlyDone) { pending.push(() => plot(el, traces, layout, config, after)); el.innerHTML = '<p class="hint">loading chart ...</p>'; return; }
      el.innerHTML = '<p class="hint">charts need plotly (pip install \'tapeout[ui]\')</p>'; return;
    }
    el.innerHTML = "";
    const text = (o) => { if (o && typeof o.title === "string") o.title = {text: o.title}; };  // plotly.js 3: {text}
    text(layout); ["xaxis", "yaxis", "yaxis2"].forEach((k) => text(layout[k]));
    Plotly.newPlot(el, traces, Object.assign({margin: {l: 60, r: layout.yaxis2 ? 70 : 20, t: 40, b: 50}, legend: {orientation: "h"}}, layout),
      Object.assign({displaylogo: false, responsive: true}, config || {})).then(() => { if (after) after(el); });
  }

  function metric(key, label, value, text, sub) {
    return `<div class="metric" data-key="${esc(key)}" data-value="${esc(value)}"><div class="label">${esc(label)}</div>` +
      `<div class="value">${esc(text)}</div>${sub ? `<div class="sub">${esc(sub)}</div>` : ""}</div>`;
  }

  // ---- a sortable, filterable table ---------------------------------------------------------------
  // cols: [{key, label, text: row -> string, value: row -> sortable, cls}]
  function table(cols, rows, opts) {
    opts = opts || {};
    const head = cols.map((c, i) => `<th class="sortable ${c.cls || ""}" data-col="${i}">${esc(c.label)}</th>`).join("");
    const body = rows.map((r, ri) => `<tr data-row="${ri}"${opts.clickable ? ' class="clickable"' : ""}>` + cols.map((c) => {
      const v = c.value ? c.value(r) : r[c.key];
      return `<td class="${c.cls || ""}" data-key="${esc(c.key)}" data-v="${esc(v ?? "")}">${c.html ? c.html(r) : esc(c.text ? c.text(r) : v ?? "-")}</td>`;
    }).join("") + "</tr>").join("");
    return `<div class="tablewrap"><table class="${opts.cls || ""}"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>`;
  }

  function sortable(wrap) {
    $$("th.sortable", wrap).forEach((th) => th.addEventListener("click", () => {
      const i = +th.dataset.col, tbody = $("tbody", wrap), asc = !th.classList.contains("sorted-asc");
      $$("th", wrap).forEach((h) => h.classList.remove("sorted-asc", "sorted-desc"));
      th.classList.add(asc ? "sorted-asc" : "sorted-desc");
      const rows = $$("tr", tbody), key = (tr) => tr.children[i].dataset.v;
      rows.sort((a, b) => {
        const x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
        const c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
        return asc ? c : -c;
      });
      rows.forEach((r) => tbody.appendChild(r));
    }));
  }

  // ---- the prediction -----------------------------------------------------------------------------
  const MEM = [["weights_bytes", "weights", "#1f5fa8"], ["kv_cache_bytes", "KV cache", "#2ca02c"],
    ["activation_bytes", "activations", "#ff7f0e"], ["runtime_reserve_bytes", "runtime reserve", "#9467bd"]];

  function renderPrediction(d, el) {
    const i = d.inputs, mem = d.memory, dec = d.phases.decode;
    const devices = Math.max(i.tp * (i.pp || 1), i.dp_attention || 1);
    let h = `<h2 id="headline">${esc(i.model)} on ${devices} x ${esc(i.hardware)}</h2>` +
      `<p class="hint" id="scenario-line">batch ${i.batch}, ${i.input_len} in / ${i.output_len} out, tp ${i.tp}, pp ${i.pp}, ep ${i.ep}, ` +
      `weights ${esc(i.weights)}, activations ${esc(i.activations)}, KV ${esc(i.kv_cache)}` +
      `${i.sparsity ? ", sparsity " + esc(i.sparsity) : ""}, attention ${esc(i.attention)}, framework ${esc(i.framework)}, tier ${esc(i.tier)}</p>`;
    h += (d.warnings || []).map((w) => `<div class="warn">warning: ${esc(w)}</div>`).join("");
    h += (d.notes || []).map((n) => `<div class="note">note: ${esc(n)}</div>`).join("");
    const fits = mem.fits ? "fits" : "does NOT fit";
    h += '<div class="cards" id="summary">' +
      metric("ttft_s", "TTFT (prefill)", d.ttft_s, fmt.seconds(d.ttft_s)) +
      metric("tpot_s", "TPOT (mean decode step)", d.tpot_s, fmt.seconds(d.tpot_s),
        `context ${dec.first_context}: ${fmt.seconds(dec.first_step_s)} → ${dec.last_context}: ${fmt.seconds(dec.last_step_s)}`) +
      metric("e2e_latency_s", "end-to-end latency", d.e2e_latency_s, fmt.seconds(d.e2e_latency_s)) +
      metric("throughput_tok_s", "throughput (generated)", d.throughput_tok_s, fmt.rate(d.throughput_tok_s)) +
      metric("memory.total_bytes", "memory per device", mem.total_bytes, fmt.nbytes(mem.total_bytes),
        `of ${fmt.nbytes(mem.capacity_bytes)}: ${fits}`) +
      metric("memory.max_batch", "largest batch that fits", mem.max_batch, String(mem.max_batch)) + "</div>";
    h += '<div class="membar" id="membar" title="memory per device against its capacity">' + MEM.map(([k, label, color]) =>
      `<div style="width:${Math.max(0, 100 * mem[k] / mem.capacity_bytes)}%;background:${color}" title="${label}: ${fmt.nbytes(mem[k])}"></div>`).join("") + "</div>";
    if (d.comparison) {
      const c = d.comparison, b = c.baseline;
      h += `<h2>Compared with weights ${esc(b.weights)}, activations ${esc(b.activations)}, KV ${esc(b.kv_cache)}</h2>` +
        table([{key: "what", label: "", cls: "text"}, {key: "baseline", label: "baseline"}, {key: "technique", label: "technique"}, {key: "speedup", label: "speedup"}],
          [["ttft_s", "prefill (TTFT)"], ["tpot_s", "decode step (TPOT)"], ["e2e_latency_s", "end to end"]].map(([k, l]) =>
            ({what: l, baseline: fmt.seconds(c[k].baseline), technique: fmt.seconds(c[k].technique), speedup: c[k].speedup.toFixed(2) + "x"})));
    }
    h += '<div class="charts"><div class="chart" id="roofline"></div><div class="chart" id="breakdown"></div><div class="chart" id="memory-chart"></div></div>';
    h += '<h2>Per-op costs</h2><p class="hint">Prefill, then one decode step at context ' + dec.ops_shown_at_context +
      '. Per run: one execution; total: x count. compute/memory/network/overhead: the terms behind each time.</p>' +
      '<div class="toolbar"><label>filter <input id="op-filter" placeholder="name, kind or bound"></label>' +
      '<label>phase <select id="op-phase"><option value="">both</option><option>prefill</option><option>decode</option></select></label>' +
      '<span id="op-count"></span></div><div id="ops-table"></div>';
    el.innerHTML = h;
    const cols = [
      {key: "phase", label: "phase", cls: "text"}, {key: "name", label: "op", cls: "text"}, {key: "kind", label: "kind", cls: "text"},
      {key: "count", label: "×"}, {key: "shape", label: "shape", cls: "text", text: (r) => fmt.shape(r.shape), value: (r) => fmt.shape(r.shape)},
      {key: "formats", label: "stored → computes", cls: "text", value: (r) => storedComputes(r), text: storedComputes},
      {key: "bound", label: "bound", cls: "text", html: (r) => `<span class="bound-${esc(r.bound)}">${esc(r.bound)}</span>`},
      {key: "intensity", label: "FLOP/B", text: (r) => fmt.num(r.intensity, 4)},
      {key: "flops", label: "FLOPs", text: (r) => fmt.count(r.flops)},
      {key: "bytes", label: "bytes", value: (r) => r.bytes_read + r.bytes_written, text: (r) => fmt.nbytes(r.bytes_read + r.bytes_written)},
      {key: "achieved_tflops", label: "TFLOP/s", text: (r) => fmt.num(r.achieved_tflops, 4)},
      {key: "time_s", label: "per run", text: (r) => fmt.seconds(r.time_s)},
      {key: "compute_s", label: "compute", text: (r) => fmt.seconds(r.compute_s)},
      {key: "memory_s", label: "memory", text: (r) => fmt.seconds(r.memory_s)},
      {key: "network_s", label: "network", text: (r) => fmt.seconds(r.network_s)},
      {key: "overhead_s", label: "overhead", text: (r) => fmt.seconds(r.overhead_s)},
      {key: "total_s", label: "total", text: (r) => fmt.seconds(r.total_s)},
      {key: "share", label: "share", text: (r) => (100 * r.share).toFixed(1) + "%"},
    ];
    $("#ops-table", el).innerHTML = table(cols, d.ops, {cls: "ops"});
    sortable($("#ops-table", el));
    const filter = () => {
      const q = $("#op-filter", el).value.trim().toLowerCase(), ph = $("#op-phase", el).value;
      let n = 0;
      $$("#ops-table tbody tr", el).forEach((tr) => {
        const r = d.ops[+tr.dataset.row];
        const show = (!ph || r.phase === ph) && (!q || [r.name, r.kind, r.bound].some((s) => String(s).toLowerCase().includes(q)));
        tr.hidden = !show; n += show;
      });
      $("#op-count", el).textContent = `${n} of ${d.ops.length} ops`;
    };
    $("#op-filter", el).addEventListener("input", filter);
    $("#op-phase", el).addEventListener("change", filter);
    filter();
    rooflineChart($("#roofline", el), d);
    breakdownChart($("#breakdown", el), d);
    memoryChart($("#memory-chart", el), d);
  }

  function storedComputes(r) {
    const names = {weights: "w", act: "a", kv: "kv", table: "table"}, f = r.formats || {};
    let s = Object.entries(f).filter(([k]) => k in names).map(([k, v]) => names[k] + " " + v).join(" ");
    if (f.sparsity) s += " sp " + f.sparsity;
    return (s || "-") + " → " + (r.computes_in || "-");
  }

  function rooflineChart(el, d) {
    const bw = d.hardware_info.memory_bandwidth_gbps / 1e3; // TB/s: TFLOP/s per FLOP/B
    const shown = d.ops.filter((r) => r.intensity > 0 && r.achieved_tflops > 0 && r.ceiling_tflops);
    const xs = shown.map((r) => r.intensity), lo = Math.min(0.1, ...xs) / 2, hi = Math.max(1e3, ...xs) * 2;
    const traces = [];
    const roofs = {};
    shown.forEach((r) => { roofs[r.ceiling] = r.ceiling_tflops; });
    Object.entries(roofs).forEach(([label, peak]) => {
      const knee = peak / bw;
      traces.push({x: [lo, knee, hi], y: [lo * bw, peak, peak], mode: "lines", name: `${label} roof ${fmt.num(peak, 4)} TFLOP/s`,
        line: {dash: label.startsWith("vector") ? "dot" : "solid", width: 1.5}, hoverinfo: "name"});
    });
    for (const [phase, symbol] of [["prefill", "circle"], ["decode", "diamond"]]) {
      const ops = shown.filter((r) => r.phase === phase);
      traces.push({x: ops.map((r) => r.intensity), y: ops.map((r) => r.achieved_tflops), mode: "markers", name: phase + " ops",
        marker: {symbol, size: 9}, text: ops.map((r) => `${r.name} (${r.kind}, ${phase})<br>${fmt.num(r.intensity, 4)} FLOP/B, ` +
          `${fmt.num(r.achieved_tflops, 4)} TFLOP/s of ${fmt.num(r.ceiling_tflops, 4)} (${r.ceiling})<br>${r.bound}-bound, ${fmt.seconds(r.time_s)} per run`),
        hoverinfo: "text"});
    }
    plot(el, traces, {title: `Roofline: ${d.hardware_info.display_name || d.inputs.hardware}, ${fmt.num(d.hardware_info.memory_bandwidth_gbps, 4)} GB/s`,
      xaxis: {type: "log", title: "arithmetic intensity (FLOP/byte)"}, yaxis: {type: "log", title: "achieved TFLOP/s (per run)"}});
  }

  function breakdownChart(el, d) {
    const kinds = [...new Set(d.ops.map((r) => r.kind))];
    const phases = ["prefill", "decode"];
    const label = {prefill: "prefill (TTFT)", decode: "decode step"};
    const traces = kinds.map((k) => ({type: "bar", name: k, x: phases.map((p) => label[p]),
      y: phases.map((p) => 1e3 * d.ops.filter((r) => r.phase === p && r.kind === k).reduce((a, r) => a + r.total_s, 0))}));
    plot(el, traces, {title: "Time by op class (ms)", barmode: "stack", yaxis: {title: "ms"}});
  }

  function memoryChart(el, d) {
    const m = d.memory;
    plot(el, [{type: "bar", x: MEM.map((x) => x[1]), y: MEM.map((x) => m[x[0]] / 1e9), marker: {color: MEM.map((x) => x[2])}, name: "GB"}],
      {title: `Memory per device (GB) of ${fmt.nbytes(m.capacity_bytes)}`, yaxis: {title: "GB"},
        shapes: [{type: "line", xref: "paper", x0: 0, x1: 1, y0: m.capacity_bytes / 1e9, y1: m.capacity_bytes / 1e9, line: {color: "#b00020", dash: "dash"}}]});
  }

  // ---- inputs -------------------------------------------------------------------------------------
  async function fileUpload(input) {
    const f = input.files && input.files[0];
    return f ? {name: f.name, content: await f.text()} : null;
  }

  // the scenario keys shared by predict and simulate, from the form (blank fields: the API's defaults)
  async function scenario(keys) {
    const body = {};
    const mf = await fileUpload($("#model-file")), hf = await fileUpload($("#hardware-file"));
    if (mf) body.model_file = mf; else body.model = $("#model").value;
    if (hf) body.hardware_file = hf; else body.hardware = $("#hardware").value;
    for (const k of keys) {
      const el = $("#" + k), v = el.value.trim();
      if (v === "") continue;
      if (el.type === "number") body[k] = Number(v);
      else if (k === "sparsity" && /^[0-9.]+$/.test(v)) body[k] = Number(v);
      else body[k] = v;
    }
    return body;
  }
  const PREDICT_KEYS = ["batch", "input_len", "output_len", "tp", "pp", "ep", "weights", "activations", "kv_cache", "sparsity", "framework", "tier", "attention"];
  const SIM_SHARED = ["tp", "pp", "ep", "weights", "activations", "kv_cache", "framework", "tier", "attention"];

  async function runPredict(ev) {
    if (ev) ev.preventDefault();
    const el = $("#results");
    status("predicting ...");
    try {
      const body = await scenario(PREDICT_KEYS);
      const d = await api("/api/predict", body);
      state.lastBody = body; state.last = d;
      renderPrediction(d, el);
      el.dataset.runs = String(+el.dataset.runs + 1);
      status("");
    } catch (e) { status(e.message, true); }
  }

  function fillSelect(sel, items, value) {
    sel.innerHTML += items.map((x) => `<option value="${esc(x.value ?? x)}">${esc(x.label ?? x)}</option>`).join("");
    if (value !== undefined) sel.value = value;
  }

  // ---- compare ------------------------------------------------------------------------------------
  const CMP_INPUTS = ["model", "hardware", "batch", "input_len", "output_len", "tp", "pp", "ep", "weights", "activations", "kv_cache", "sparsity", "framework", "tier"];
  // [label, getter, formatter, better: "low" | "high" | null]
  const CMP_METRICS = [
    ["TTFT", (d) => d.ttft_s, fmt.seconds, "low"], ["TPOT", (d) => d.tpot_s, fmt.seconds, "low"],
    ["end-to-end latency", (d) => d.e2e_latency_s, fmt.seconds, "low"], ["throughput", (d) => d.throughput_tok_s, fmt.rate, "high"],
    ["memory per device", (d) => d.memory.total_bytes, fmt.nbytes, "low"], ["capacity", (d) => d.memory.capacity_bytes, fmt.nbytes, "high"],
    ["fits", (d) => d.memory.fits, String, null], ["largest batch", (d) => d.memory.max_batch, String, "high"],
  ];

  async function addCompare() {
    if (state.compare.length >= 4) { status("compare holds four scenarios: remove one first", true); return; }
    status("predicting ...");
    try {
      const body = await scenario(PREDICT_KEYS);
      const d = await api("/api/predict", body);
      state.compare.push(d);
      renderCompare(); status(`${state.compare.length} scenario(s) in Compare`);
    } catch (e) { status(e.message, true); }
  }

  function renderCompare() {
    const el = $("#compare-table"), S = state.compare;
    el.dataset.count = String(S.length);
    if (!S.length) { el.innerHTML = ""; return; }
    const head = "<tr><th class=text></th>" + S.map((_, j) => `<th>scenario ${j + 1} <button type="button" data-remove="${j}" title="remove">×</button></th>`).join("") + "</tr>";
    const row = (label, vals, texts, better) => "<tr><td class=text>" + esc(label) + "</td>" + vals.map((v, j) => {
      let cls = "";
      if (j > 0 && String(v) !== String(vals[0])) {
        cls = "diff";
        if (better && typeof v === "number") cls = (better === "low" ? v < vals[0] : v > vals[0]) ? "better" : "worse";
      }
      const ratio = j > 0 && better && typeof v === "number" && vals[0] ? ` (${(v / vals[0]).toFixed(2)}x)` : "";
      return `<td class="${cls}" data-v="${esc(v)}">${esc(texts[j])}${ratio}</td>`;
    }).join("") + "</tr>";
    let body = CMP_INPUTS.map((k) => { const vals = S.map((d) => d.inputs[k] ?? "-"); return row(k, vals, vals.map(String), null); }).join("");
    body += CMP_METRICS.map(([label, get, f, better]) => { const vals = S.map(get); return row(label, vals, vals.map(f), better); }).join("");
    el.innerHTML = `<table class="compare"><thead>${head}</thead><tbody>${body}</tbody></table>`;
    $$("button[data-remove]", el).forEach((b) => b.addEventListener("click", () => { S.splice(+b.dataset.remove, 1); renderCompare(); }));
  }

  // ---- exploration --------------------------------------------------------------------------------
  function renderExplore(run, el) {
    state.explore = run;
    const [xs, ys] = run.axes, labels = run.labels;
    let h = `<h2>${esc(run.space)}: ${run.points} designs, ${run.feasible} feasible, ${run.pareto_size} on the Pareto front</h2>`;
    if (run.feasibility) h += `<div class="warn">${esc(run.feasibility)}</div>`;
    h += '<div class="charts"><div class="chart" id="pareto"></div><div id="design" class="panel"><p class="hint">Click a point (or a row below) to see its design and prediction.</p></div></div>';
    h += "<h2>Pareto front</h2><div id=\"front-table\"></div>";
    el.innerHTML = h;
    const front = run.rows.map((r, i) => [r, i]).filter(([r]) => r.pareto);
    const cols = [...run.parameters.map((p) => ({key: p, label: p, cls: "text"})), ...labels.map((l) => ({key: l, label: l, text: (r) => fmt.num(r[l], 4)})),
      {key: "device_cost_usd", label: "device $", text: (r) => fmt.num(r.device_cost_usd, 4)}, {key: "area_mm2", label: "area mm²", text: (r) => fmt.num(r.area_mm2, 4)}];
    $("#front-table", el).innerHTML = table(cols, front.map(([r]) => r), {clickable: true});
    sortable($("#front-table", el));
    $$("#front-table tbody tr", el).forEach((tr) => tr.addEventListener("click", () => selectDesign(front[+tr.dataset.row][1])));
    const group = (pred) => run.rows.map((r, i) => [r, i]).filter(([r]) => pred(r) && r[xs] != null && r[ys] != null);
    const trace = (rows, name, color, size) => ({x: rows.map(([r]) => r[xs]), y: rows.map(([r]) => r[ys]), customdata: rows.map(([, i]) => i),
      mode: "markers", name, marker: {color, size}, text: rows.map(([r]) => run.parameters.map((p) => `${p}=${r[p]}`).join("<br>")), hoverinfo: "text"});
    const chart = $("#pareto", el);
    plot(chart, [trace(group((r) => !r.feasible), "infeasible", "#cccccc", 5), trace(group((r) => r.feasible && !r.pareto), "feasible", "#7f9fbf", 7),
      trace(group((r) => r.pareto), "Pareto front", "#d62728", 11)],
    {title: `${run.space}: ${ys} against ${xs}`, xaxis: {title: xs}, yaxis: {title: ys}, hovermode: "closest"}, {},
    (gd) => gd.on("plotly_click", (ev) => { if (ev.points.length) selectDesign(ev.points[0].customdata); }));
  }

  function selectDesign(i) {
    const run = state.explore, r = run.rows[i], el = $("#design");
    const params = run.parameters.map((p) => [p, r[p]]);
    const objectives = run.labels.map((l) => [l + " (" + run.objectives[l] + ")", r[l]]);
    const other = Object.entries(r).filter(([k]) => !run.parameters.includes(k) && !run.labels.includes(k) && !["key", "pareto", "feasible", "violations"].includes(k));
    const rows = (pairs) => pairs.map(([k, v]) => `<tr><td class="text">${esc(k)}</td><td data-key="${esc(k)}" data-v="${esc(v ?? "")}">${esc(typeof v === "number" ? fmt.num(v, 5) : v ?? "-")}</td></tr>`).join("");
    el.innerHTML = `<h2 id="design-title" data-index="${i}">design ${esc(r.key)}${r.pareto ? " (Pareto front)" : ""}${r.feasible ? "" : " (infeasible)"}</h2>` +
      `<table><tbody><tr><th class="text" colspan="2">design</th></tr>${rows(params)}<tr><th class="text" colspan="2">objectives</th></tr>${rows(objectives)}` +
      `<tr><th class="text" colspan="2">prediction and cost</th></tr>${rows(other)}</tbody></table>` +
      (r.violations ? `<div class="warn">${esc(r.violations)}</div>` : "");
    $$("#front-table tbody tr").forEach((tr) => tr.classList.toggle("selected", false));
  }

  async function openExplore(ev) {
    if (ev) ev.preventDefault();
    status("reading the run ...");
    try {
      renderExplore(await api("/api/explore?db=" + encodeURIComponent($("#explore-db").value.trim())), $("#explore-results"));
      status("");
    } catch (e) { status(e.message, true); }
  }

  // ---- serving ------------------------------------------------------------------------------------
  async function runSimulate(ev) {
    if (ev) ev.preventDefault();
    status("simulating ...");
    try {
      const body = await scenario(SIM_SHARED);
      body.num_requests = Number($("#num_requests").value);
      const rate = $("#rate").value.trim();
      if (rate !== "") body.rate = Number(rate);
      for (const k of ["scheduler", "kv_policy", "prefill_pass"]) body[k] = $("#" + k).value;
      body.max_batch = Number($("#max_batch").value);
      const w = $("#workload").value;
      if (w) body.workload = w; else { body.input_len = Number($("#input_len").value); body.output_len = Number($("#output_len").value); }
      renderServing(await api("/api/simulate?series=true", body), $("#serving-results"));
      status("");
    } catch (e) { status(e.message, true); }
  }

  function renderServing(s, el) {
    const p = (k, label) => metric(k + ".p50", label + " p50", s[k].p50, fmt.seconds(s[k].p50), `p90 ${fmt.seconds(s[k].p90)}, p99 ${fmt.seconds(s[k].p99)}`);
    const i = s.inputs, tbo = i.two_batch_overlap ? ", two-batch overlap" : "";  // the CLI's engine_line
    el.innerHTML = `<h2>${esc(i.model)} on ${esc(i.hardware)}: ${i.num_requests} requests, rate ${esc(i.rate)}</h2>` +
      `<p class="hint" id="serving-engine">${esc(i.scheduler)}, ${esc(i.kv_policy)} KV, ${esc(i.prefill_pass)} prefill${tbo}, max batch ${i.max_batch}</p>` +
      '<div class="cards" id="serving-summary">' + p("ttft_s", "TTFT") + p("tpot_s", "TPOT") + p("itl_s", "ITL") + p("e2e_latency_s", "e2e latency") +
      metric("output_throughput_tok_s", "output throughput", s.output_throughput_tok_s, fmt.rate(s.output_throughput_tok_s)) +
      metric("goodput_rps", "goodput", s.goodput_rps, fmt.num(s.goodput_rps, 4) + " req/s") +
      metric("kv_utilization.max", "KV use (max)", s.kv_utilization.max, (100 * s.kv_utilization.max).toFixed(1) + "%", `mean ${(100 * s.kv_utilization.mean).toFixed(1)}%`) +
      metric("preemptions", "preemptions", s.preemptions, String(s.preemptions)) + "</div>" +
      '<div class="charts"><div class="chart" id="cdf"></div><div class="chart" id="kv-time"></div></div>';
    const ser = s.series;
    plot($("#cdf", el), Object.entries(ser.latency_cdf).map(([k, v]) => ({x: v.ms, y: v.fraction, mode: "lines", name: k})),
      {title: "Latency CDFs", xaxis: {type: "log", title: "ms"}, yaxis: {title: "fraction of requests (ITL: of tokens)"}});
    plot($("#kv-time", el), ser.over_time.flatMap((r) => [
      {x: r.t_s, y: r.kv_used.map((u) => 100 * u), mode: "lines", line: {shape: "hv"}, name: `replica ${r.replica} KV %`},
      {x: r.t_s, y: r.running, mode: "lines", line: {shape: "hv", dash: "dot"}, name: `replica ${r.replica} running`, yaxis: "y2"}]),
    {title: "KV blocks in use and running requests", xaxis: {title: "time (s)"}, yaxis: {title: "KV in use (%)"},
      yaxis2: {title: "running requests", overlaying: "y", side: "right"}});
  }

  // ---- views and start-up -------------------------------------------------------------------------
  function show(view) {
    $$("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.view === view));
    $$(".view").forEach((v) => { v.hidden = v.id !== "view-" + view; });
    if (window.Plotly) $$("#view-" + view + " .js-plotly-plot").forEach((p) => Plotly.Plots.resize(p));
  }

  function plotlyLoaded() {
    plotlyDone = true;
    pending.splice(0).forEach((f) => f());
    document.body.dataset.charts = window.Plotly ? "1" : "0";
  }

  function loadPlotly() {
    if (window.Plotly) { plotlyLoaded(); return; }
    if (REPORT) { window.addEventListener("load", plotlyLoaded); return; }  // inlined after this script
    const s = document.createElement("script");
    s.src = "/static/plotly.min.js"; s.onload = plotlyLoaded; s.onerror = plotlyLoaded;
    document.head.appendChild(s);
  }

  function ready() {
    // milliseconds since navigation: the first render (numbers, tables; charts follow when plotly.js is parsed)
    window.TAPEOUT_TIMING = Object.assign(window.TAPEOUT_TIMING || {}, {sinceNavigationMs: performance.now(), scriptMs: performance.now() - t0});
    document.body.dataset.ready = "1";
  }

  async function start() {
    $$("#tabs button").forEach((b) => b.addEventListener("click", () => show(b.dataset.view)));
    if (REPORT) {
      document.body.classList.add("report");
      $("#tabs").hidden = true; $("#inputs").hidden = true;
      if (REPORT.kind === "explore") {
        $("#explore-form").hidden = true; show("explore");
        renderExplore(REPORT.run, $("#explore-results"));
      } else {
        renderPrediction(REPORT.prediction, $("#results"));
      }
      ready();
      loadPlotly();
      return;
    }
    $("#inputs").addEventListener("submit", runPredict);
    $("#add-compare").addEventListener("click", addCompare);
    $("#compare-clear").addEventListener("click", () => { state.compare = []; renderCompare(); });
    $("#explore-form").addEventListener("submit", openExplore);
    $("#serving-form").addEventListener("submit", runSimulate);
    try {
      const [opts, models, hw] = await Promise.all([api("/api/options"), api("/api/models"), api("/api/hardware")]);
      state.options = opts;
      fillSelect($("#model"), models.map((m) => ({value: m.name, label: `${m.name} (${fmt.count(m.params)})`})), "llama-2-7b");
      fillSelect($("#hardware"), hw.map((h) => ({value: h.name, label: h.display_name || h.name})), "a100-sxm-80gb");
      $("#formats").innerHTML = opts.formats.map((f) => `<option value="${esc(f)}">`).join("");
      fillSelect($("#framework"), opts.frameworks, "kernels");
      fillSelect($("#tier"), opts.tiers);
      fillSelect($("#attention"), opts.attention, "flash");
      const dflt = opts.serving_defaults;
      fillSelect($("#scheduler"), opts.schedulers, dflt.scheduler);
      fillSelect($("#kv_policy"), opts.kv_policies, dflt.kv_policy);
      fillSelect($("#prefill_pass"), opts.prefill_passes, dflt.prefill_pass);
      $("#max_batch").value = dflt.max_batch;
      fillSelect($("#workload"), opts.workloads);
      window.TAPEOUT_TIMING = {inputsMs: performance.now()};  // the inputs are usable
      await runPredict();
    } catch (e) { status(e.message, true); }
    ready();
    loadPlotly();
  }

  window.tapeout = {fmt, selectDesign, show, renderPrediction};
  // a report starts at once (its elements are above this script; plotly.js is parsed after it)
  if (REPORT || document.readyState !== "loading") start(); else document.addEventListener("DOMContentLoaded", start);
})();
