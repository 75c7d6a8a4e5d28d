// Shelfgate status page: one EventSource, hand-written SVG plots, no libraries.
"use strict";
(function () {
  const WINDOW_MS = 5 * 60 * 1000; // plot span
  const MAX_EVENTS = 500;
  const S = { bins: [], series: {}, last: {}, events: [], history: [], snap: null, actions: false, analytic: false, dirty: true };
  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
  const SVGNS = "http://www.w3.org/2000/svg";
  const fmt = (v, d) => (v === undefined || v === null || !isFinite(v)) ? "–" : Number(v).toFixed(d === undefined ? 1 : d);
  const tstr = (ms) => ms ? new Date(ms).toLocaleTimeString([], { hour12: false }) : "–";
  const binOfStream = (s) => (s || "").replace(/^(loadcell|events)\//, "");
  let token = sessionStorage.getItem("shelfgate-token") || "";

  // ---- stream ----
  function connect() {
    const es = new EventSource("api/stream");
    es.addEventListener("hello", (m) => { hello(JSON.parse(m.data)); setConn(true); });
    es.addEventListener("update", (m) => { apply(JSON.parse(m.data)); });
    es.onerror = () => { setConn(false); };
  }
  function setConn(ok) { const c = $("conn"); c.textContent = ok ? "live" : "reconnecting"; c.className = "pill" + (ok ? "" : " bad"); }

  function hello(h) {
    S.bins = h.bins || []; S.actions = !!h.actions; S.analytic = !!h.analytic;
    S.series = {}; S.last = {}; S.events = []; S.history = h.history || [];
    $("gwname").textContent = (h.site || "") + " / " + (h.gateway || "") + " · " + (h.version || "");
    $("unlock").hidden = !S.actions;
    buildBins();
    apply(h);
  }

  function apply(u) {
    for (const [id, su] of Object.entries(u.streams || {})) {
      const arr = S.series[id] || (S.series[id] = []);
      if (su.p) for (const p of su.p) arr.push(p);
      const cut = (u.t || Date.now()) - WINDOW_MS;
      let k = 0; while (k < arr.length && arr[k][0] < cut) k++;
      if (k) arr.splice(0, k);
      S.last[id] = su;
    }
    if (u.events) for (const r of u.events) S.events.push(r);
    if (S.events.length > MAX_EVENTS) S.events.splice(0, S.events.length - MAX_EVENTS);
    if (u.snap) {
      S.snap = u.snap;
      if (!u.history) { S.history.push(u.snap.pipe); if (S.history.length > 300) S.history.shift(); }
    }
    S.dirty = true;
  }

  // ---- plots ----
  function plot(svg, lines, tmin, tmax, band) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    let first = Infinity;
    for (const l of lines) if (l.pts.length) first = Math.min(first, l.pts[0][0]);
    if (isFinite(first)) tmin = Math.max(tmin, Math.min(first, tmax - 10000)); // fill the width until the window is full
    const W = 300, H = 70;
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`); svg.setAttribute("preserveAspectRatio", "none");
    let lo = Infinity, hi = -Infinity;
    for (const l of lines) for (const p of l.pts) { const a = band ? p[2] : p[1], b = band ? p[3] : p[1]; if (a < lo) lo = a; if (b > hi) hi = b; }
    if (!isFinite(lo)) { svg.dataset.lastT = "0"; return; }
    if (hi - lo < 1e-9) { hi += 1; lo -= 1; }
    const pad = (hi - lo) * 0.1; lo -= pad; hi += pad;
    const x = (t) => ((t - tmin) / Math.max(1, tmax - tmin)) * W, y = (v) => H - ((v - lo) / (hi - lo)) * H;
    let lastT = 0;
    lines.forEach((l, i) => {
      if (!l.pts.length) return;
      if (band) {
        const poly = document.createElementNS(SVGNS, "polygon");
        const up = l.pts.map((p) => `${x(p[0]).toFixed(1)},${y(p[3]).toFixed(1)}`), dn = l.pts.slice().reverse().map((p) => `${x(p[0]).toFixed(1)},${y(p[2]).toFixed(1)}`);
        poly.setAttribute("points", up.concat(dn).join(" ")); poly.setAttribute("class", "band"); svg.appendChild(poly);
      }
      const pl = document.createElementNS(SVGNS, "polyline");
      pl.setAttribute("points", l.pts.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" "));
      pl.setAttribute("class", "s" + (i % 4)); svg.appendChild(pl);
      lastT = Math.max(lastT, l.pts[l.pts.length - 1][0]);
    });
    const lab = (txt, yy, xx, anchor) => { const t = document.createElementNS(SVGNS, "text"); t.setAttribute("x", xx); t.setAttribute("y", yy); if (anchor) t.setAttribute("text-anchor", anchor); t.textContent = txt; svg.appendChild(t); };
    lab(fmt(hi - pad, Math.abs(hi) < 10 ? 2 : 0), 9, 2); lab(fmt(lo + pad, Math.abs(lo) < 10 ? 2 : 0), H - 2, 2);
    const span = (tmax - tmin) / 1000;
    lab(span >= 90 ? "last " + Math.round(span / 60) + " min" : "last " + Math.round(span) + " s", 9, W - 2, "end");
    svg.dataset.lastT = String(lastT);
  }

  // ---- shelves ----
  function buildBins() {
    const box = $("bins"); box.textContent = "";
    for (const b of S.bins) {
      const c = el("div", "card"); c.id = "bin-" + b.id; c.dataset.bin = b.id;
      const h = el("h3"); h.append(el("span", "", b.id), el("span", "badge ok", "ok")); c.append(h);
      c.append(el("div", "sku", (b.sku || "no SKU") + (b.unit_g ? " · " + b.unit_g + " g/unit" : "")));
      c.append(el("div", "big weight", "–"));
      const svg = document.createElementNS(SVGNS, "svg"); svg.setAttribute("class", "plot"); svg.dataset.stream = b.stream; c.append(svg);
      const r1 = el("div", "row"); r1.append(el("span", "", "stock"), el("b", "stock", "–")); c.append(r1);
      const r2 = el("div", "row"); r2.append(el("span", "", "last event"), el("b", "lastev", "–")); c.append(r2);
      if (S.actions) {
        const a = el("div", "acts");
        const t = el("button", "tare", "Tare"); t.onclick = () => tare(b);
        const k = el("button", "calib", "Calibrate…"); k.onclick = () => calibrate(b);
        a.append(t, k); c.append(a);
      }
      box.append(c);
    }
  }
  function faultsByBin() {
    const m = {};
    for (const s of (S.snap && S.snap.sensors) || []) if (s.bin && !s.healthy) m[s.bin] = s.faults || "fault";
    return m;
  }
  function renderShelves(now) {
    const faults = faultsByBin(), lastEv = {};
    for (const r of S.events) { const e = r.ev; const bin = e.bin || binOfStream(e.stream); if (e.kind !== "scan" && e.kind !== "tag") lastEv[bin] = e; }
    for (const b of S.bins) {
      const c = document.getElementById("bin-" + b.id); if (!c) continue;
      const last = S.last[b.stream];
      let wtxt = last ? fmt(last.v) + " g" : "–";
      if (last && last.q & 2) wtxt += " saturated";
      if (last && last.q & 4) wtxt += " stale";
      if (last && last.vt && now - last.vt > 5000) wtxt += ` (${fmt((now - last.vt) / 1000, 0)} s old)`;
      c.querySelector(".weight").textContent = wtxt;
      const f = faults[b.id], badge = c.querySelector(".badge");
      c.classList.toggle("fault", !!f); badge.className = "badge" + (f ? "" : " ok"); badge.textContent = f ? "FAULT " + f : "ok";
      const st = S.snap && S.snap.stock ? S.snap.stock[b.id] : undefined;
      c.querySelector(".stock").textContent = st === undefined ? "–" : st + " units";
      const e = lastEv[b.id];
      c.querySelector(".lastev").textContent = e ? `${e.kind}${e.qty ? " " + e.qty : ""}${e.sku ? " " + e.sku : ""}${e.detail ? " " + e.detail : ""} · ${tstr(Date.parse(e.time))}` : "–";
      const pts = S.series[b.stream] || [];
      plot(c.querySelector("svg"), [{ pts }], now - WINDOW_MS, now, true);
    }
  }

  // ---- events ----
  function renderEvents() {
    const kind = $("fkind").value, text = $("ftext").value.trim().toLowerCase(), mis = $("fmis").checked;
    const tb = $("evlist"); tb.textContent = "";
    let n = 0;
    for (let i = S.events.length - 1; i >= 0 && n < 200; i--) {
      const e = S.events[i].ev;
      if (kind && e.kind !== kind) continue;
      if (mis && e.kind !== "mispick") continue;
      if (text && !((e.bin || "") + " " + (e.sku || "") + " " + (e.detail || "") + " " + e.stream).toLowerCase().includes(text)) continue;
      const tr = el("tr", e.kind); tr.dataset.seq = S.events[i].seq;
      for (const v of [tstr(Date.parse(e.time)), e.kind, e.bin || binOfStream(e.stream), e.qty || "", e.sku || "", e.delta_g ? fmt(e.delta_g) : "", e.confidence ? fmt(e.confidence, 2) : "", e.detail || ""]) tr.append(el("td", "", String(v)));
      tb.append(tr); n++;
    }
  }

  // ---- pipeline ----
  function tile(title, value, lines, now, sub) {
    const c = el("div", "card"); c.append(el("h3", "", title)); c.append(el("div", "big", value));
    if (sub) c.append(el("div", "row", sub));
    if (lines) { const svg = document.createElementNS(SVGNS, "svg"); svg.setAttribute("class", "plot"); c.append(svg); plot(svg, lines, now - WINDOW_MS, now, false); }
    return c;
  }
  function renderPipeline(now) {
    const box = $("pipe"); box.textContent = "";
    const h = S.history, p = (S.snap && S.snap.pipe) || {};
    const ser = (f) => h.map((s) => [s.t, f(s)]);
    box.append(tile("Uplink", p.connected ? "connected" : "disconnected", null, now, (p.brokers || []).join(", ") + (p.err ? " · " + p.err : "")));
    box.append(tile("Readings/s in · delivered", fmt(p.in_per_s, 0) + " · " + fmt(p.delivered_per_s, 0), [{ pts: ser((s) => s.in_per_s) }, { pts: ser((s) => s.delivered_per_s) }], now, "blue in, orange delivered"));
    box.append(tile("Outbox backlog", String(p.backlog ?? "–") + " rows", [{ pts: ser((s) => s.backlog) }], now));
    box.append(tile("Oldest unsent", fmt(p.oldest_s) + " s", [{ pts: ser((s) => s.oldest_s) }], now));
    box.append(tile("Shed (telemetry · events)", (p.shed_telemetry ?? "–") + " · " + (p.shed_events ?? "–"), [{ pts: ser((s) => s.shed_telemetry) }, { pts: ser((s) => s.shed_events) }], now));
    box.append(tile("Reconnects", String(p.reconnects ?? "–"), [{ pts: ser((s) => s.reconnects) }], now, "in flight " + (p.inflight ?? "–")));
    box.append(tile("Page clients", String(p.clients ?? "–"), null, now, "dropped (too slow) " + (p.dropped_clients ?? 0)));
  }

  // ---- model ----
  function renderModel() {
    const box = $("modelbox"); box.textContent = "";
    const m = S.snap && S.snap.model;
    const kv = el("div", "kv");
    const add = (k, v) => kv.append(el("div", "", k), el("div", "", v));
    if (!m) {
      add("active model", S.analytic ? "analytic" : "none");
      add("note", S.analytic ? "events come from the settled-weight detector; no int8 model is loaded" : "no classifier is configured");
    } else {
      add("active model", m.version || "–"); add("shadow", m.shadow || "none");
      add("agreement", m.shadow ? fmt(100 * m.agreement, 1) + " % of " + (m.compared || 0) : "–");
      add("inference p50 · p99", fmt(m.latency_p50_ms, 2) + " · " + fmt(m.latency_p99_ms, 2) + " ms");
      add("inferences", String(m.inferences || 0));
    }
    box.append(el("h3", "", "Model")); box.append(kv);
  }

  // ---- sensors ----
  function renderSensors(now) {
    const lr = $("lastreads"); lr.textContent = "";
    const last = {};
    for (const r of S.events) if (r.ev.kind === "scan" || r.ev.kind === "tag") last[r.ev.stream] = r.ev;
    for (const [stream, e] of Object.entries(last)) lr.append(tile((e.kind === "scan" ? "Scanner " : "RFID ") + stream, e.detail || "–", null, now, tstr(Date.parse(e.time))));
    const tb = $("senslist"); tb.textContent = "";
    for (const s of (S.snap && S.snap.sensors) || []) {
      const tr = el("tr", s.healthy ? "" : "sensor_fault");
      const age = s.last_reading ? fmt((now - Date.parse(s.last_reading)) / 1000) + " s ago" : "–";
      const cs = Object.entries(s.counters || {}).map(([k, v]) => k + " " + v).join(", ");
      for (const v of [s.name + (s.bin ? " (" + s.bin + ")" : ""), s.kind, s.healthy ? "healthy" : "FAULT " + (s.faults || ""), age, cs]) tr.append(el("td", "", v));
      tr.lastChild.className = "wrap";
      tb.append(tr);
    }
  }

  // ---- actions ----
  async function post(path, body) {
    const res = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json", "X-Shelfgate-Action": "1", "Authorization": "Bearer " + token }, body: JSON.stringify(body) });
    let j = {}; try { j = await res.json(); } catch (e) { j = { error: res.statusText }; }
    if (!res.ok) throw new Error(res.status + ": " + (j.error || res.statusText));
    return j;
  }
  function dialog(title, body, okText, onOk) {
    $("dtitle").textContent = title; const b = $("dbody"); b.textContent = ""; b.append(...body); $("derr").textContent = "";
    const ok = $("dok"); ok.textContent = okText; ok.disabled = false; $("dialog").hidden = false;
    ok.onclick = async () => { ok.disabled = true; try { await onOk(); } catch (e) { $("derr").textContent = e.message; ok.disabled = false; } };
  }
  function closeDialog() { $("dialog").hidden = true; }
  function proposalLines(p) {
    const out = [el("p", "", `bin ${p.bin} reads ${fmt(p.grams_now)} g now and will read ${fmt(p.grams_after)} g.`),
      el("p", "", `offset ${p.old_offset} → ${p.offset}, counts/g ${fmt(p.old_counts_per_gram, 3)} → ${fmt(p.counts_per_gram, 3)} (${p.samples} samples).`)];
    if (p.warning) out.push(el("p", "warnline", p.warning));
    return out;
  }
  async function tare(b) {
    try {
      const p = await post("api/tare", { bin: b.id });
      dialog("Tare " + b.id + "?", proposalLines(p), "Confirm tare", async () => { await post("api/confirm", { id: p.id }); closeDialog(); });
    } catch (e) { dialog("Tare " + b.id, [el("p", "err", e.message)], "Close", async () => closeDialog()); }
  }
  function calibrate(b) {
    dialog("Calibrate " + b.id + " — step 1 of 3", [el("p", "", "Empty the bin completely, then press ‘Bin is empty’.")], "Bin is empty", async () => {
      const first = await post("api/calibrate/empty", { bin: b.id });
      const inp = el("input"); inp.type = "number"; inp.min = "0"; inp.step = "any"; inp.placeholder = "reference weight in grams"; inp.id = "refgrams";
      dialog("Calibrate " + b.id + " — step 2 of 3", [el("p", "", "Put the reference weight in the bin, enter its weight, then press ‘Weight is on’."), inp], "Weight is on", async () => {
        const p = await post("api/calibrate/loaded", { id: first.id, reference_grams: parseFloat(inp.value) });
        dialog("Calibrate " + b.id + " — step 3 of 3: confirm", proposalLines(p), "Confirm calibration", async () => { await post("api/confirm", { id: p.id }); closeDialog(); });
      });
    });
  }

  // ---- wiring ----
  function render() {
    if (S.dirty) {
      S.dirty = false;
      const now = Date.now();
      const v = document.querySelector(".view.on").id;
      if (v === "shelves") renderShelves(now);
      else if (v === "events") renderEvents();
      else if (v === "pipeline") renderPipeline(now);
      else if (v === "model") renderModel();
      else if (v === "sensors") renderSensors(now);
    }
    requestAnimationFrame(render);
  }
  document.addEventListener("DOMContentLoaded", () => {
    for (const b of document.querySelectorAll("#tabs button")) b.onclick = () => {
      for (const x of document.querySelectorAll("#tabs button")) x.classList.toggle("on", x === b);
      for (const s of document.querySelectorAll(".view")) s.classList.toggle("on", s.id === b.dataset.view);
      S.dirty = true;
    };
    for (const id of ["fkind", "ftext", "fmis"]) $(id).addEventListener("input", () => { S.dirty = true; });
    $("dcancel").onclick = closeDialog;
    $("token").value = token;
    $("unlock").onsubmit = async (ev) => {
      ev.preventDefault(); token = $("token").value; sessionStorage.setItem("shelfgate-token", token);
      try { await post("api/auth", {}); $("unlockbtn").textContent = "Unlocked"; } catch (e) { $("unlockbtn").textContent = "Wrong token"; }
    };
    connect(); requestAnimationFrame(render);
  });
})();
