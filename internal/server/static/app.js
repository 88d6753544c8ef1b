"use strict";
(function () {
  // The token lives in sessionStorage, for this tab only, and travels in
  // the Authorization header alone: never in a URL. Files download through
  // links the server signs, which expire; other downloads are fetched with
  // the header. A token given once as ?token= is kept and taken off the
  // address bar.
  const key = "vrsniff-token";
  const params = new URLSearchParams(location.search);
  if (params.has("token")) {
    sessionStorage.setItem(key, params.get("token"));
    params.delete("token");
    const q = params.toString();
    history.replaceState(null, "", location.pathname + (q ? "?" + q : "") + location.hash);
  }
  function token() { return sessionStorage.getItem(key) || ""; }

  const pageSize = 100;
  const pairsShown = 5;
  const $ = function (id) { return document.getElementById(id); };

  function Unauthorized() { this.message = "log in to see the capture"; }

  function api(path, opts) {
    opts = opts || {};
    const t = token();
    if (t) opts.headers = Object.assign({}, opts.headers, { "Authorization": "Bearer " + t });
    return fetch(path, opts).then(function (r) {
      if (r.status === 401) {
        showLogin(t ? "wrong token" : "");
        throw new Unauthorized();
      }
      if (!r.ok && r.status !== 204) {
        return r.text().then(function (t) { throw new Error(r.status + ": " + t.trim()); });
      }
      return r;
    });
  }
  function json(path) { return api(path).then(function (r) { return r.json(); }); }

  function showLogin(msg) {
    $("login").hidden = false;
    $("main").hidden = true;
    $("loginmsg").textContent = msg;
  }
  $("login").addEventListener("submit", function (e) {
    e.preventDefault();
    sessionStorage.setItem(key, $("token").value);
    $("token").value = "";
    $("login").hidden = true;
    $("main").hidden = false;
    refresh();
  });

  function size(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
  }
  function si(n, unit) {
    const p = ["", "k", "M", "G", "T"];
    let i = 0;
    while (Math.abs(n) >= 1000 && i < p.length - 1) { n /= 1000; i++; }
    return (n >= 100 || n === 0 ? n.toFixed(0) : n.toFixed(n >= 10 ? 1 : 2)) + " " + p[i] + unit;
  }
  function dur(s) {
    s = Math.floor(s);
    const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    return (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m " + (d ? "" : s % 60 + "s");
  }
  function when(t) { return t ? new Date(t).toLocaleString() : ""; }
  function clock(t) { return t ? new Date(t).toLocaleTimeString() : ""; }
  function pad(n) { return String(n).padStart(2, "0"); }
  // localInput formats a Date for a datetime-local input; fromInput reads
  // one back as RFC 3339 (UTC).
  function localInput(d) {
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  function fromInput(v) { return v ? new Date(v).toISOString().replace(/\.\d+Z$/, "Z") : ""; }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function cell(tr, text, cls) { return tr.appendChild(el("td", text, cls)); }

  function showError(e) {
    if (e instanceof Unauthorized) return;
    $("error").textContent = e ? String(e.message || e) : "";
  }

  // Header: what is captured, since when, and how full the disk is.
  function loadInfo() {
    return json("/api/info").then(function (in_) {
      const c = in_.capture;
      $("version").textContent = c.version || "";
      const items = [];
      if (c.interface) items.push(["Interface", c.interface]);
      if (c.listen) items.push(["Listen (UDP)", c.listen]);
      if (c.read) items.push(["File", c.read]);
      if (c.ports) items.push(["Mirror ports", c.ports]);
      if (c.vxlan_ports) items.push(["VXLAN ports", c.vxlan_ports]);
      if (c.mirror_vlan) items.push(["Mirror VLAN", c.mirror_vlan]);
      items.push(["Filter", c.filter ? decodeURIComponent(c.filter.replace(/\+/g, " ")) : "none"]);
      if (c.started) items.push(["Started", when(c.started)]);
      if (in_.uptime_s) items.push(["Uptime", dur(in_.uptime_s)]);
      if (c.dir) {
        let disk = size(in_.disk_used_bytes);
        if (c.max_bytes) disk += " of " + size(c.max_bytes) + " (" + Math.round(in_.disk_used_bytes / c.max_bytes * 100) + "%)";
        items.push(["Disk used", disk]);
        if (in_.disk_free_bytes >= 0) items.push(["Free", size(in_.disk_free_bytes), in_.disk_free_bytes < 1 << 30 ? "warn" : ""]);
        const keep = [];
        if (c.file_max_bytes) keep.push("files of " + size(c.file_max_bytes));
        if (c.file_max_duration_ns) keep.push("every " + dur(c.file_max_duration_ns / 1e9));
        if (c.max_files) keep.push("keep " + c.max_files + " files");
        items.push(["Retention", keep.join(", ") || "keep all"]);
        items.push(["Directory", c.dir]);
      }
      const dl = $("capture");
      dl.replaceChildren();
      items.forEach(function (it) {
        const d = el("div", null, it[2]);
        d.dataset.key = it[0];
        d.appendChild(el("dt", it[0]));
        d.appendChild(el("dd", String(it[1])));
        dl.appendChild(d);
      });
    });
  }

  // Charts: one polyline per rate, scaled to its maximum; data-points
  // says how many points it has.
  function draw(id, values, fmt, times) {
    const fig = $(id);
    const path = fig.querySelector("path");
    const mx = Math.max.apply(null, values.concat([0]));
    const n = values.length;
    let d = "";
    values.forEach(function (v, i) {
      const x = n > 1 ? i / (n - 1) * 300 : 300;
      const y = 78 - (mx > 0 ? v / mx * 74 : 0);
      d += (i ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
    });
    path.setAttribute("d", d);
    fig.dataset.points = n;
    fig.querySelector(".cur").textContent = n ? fmt(values[n - 1]) : "no data yet";
    fig.querySelector(".max").textContent = n ? "max " + fmt(mx) : "";
    fig.querySelector(".from").textContent = n ? clock(times[0]) : "";
    fig.querySelector(".to").textContent = n ? clock(times[n - 1]) : "";
  }

  function loadHistory() {
    return json("/api/history").then(function (h) {
      const r = h.rates || [];
      const times = r.map(function (x) { return x.t; });
      draw("chart-packets", r.map(function (x) { return x.packets_per_s; }), function (v) { return si(v, "pkt/s"); }, times);
      draw("chart-bits", r.map(function (x) { return x.bits_per_s; }), function (v) { return si(v, "bit/s"); }, times);
      draw("chart-drops", r.map(function (x) { return x.drops_per_s; }), function (v) { return si(v, "/s"); }, times);
      const line = $("dropline");
      const total = h.packets_total + h.drops_total;
      if (h.drops_total > 0) {
        const last = r.length ? r[r.length - 1].drop_percent : 0;
        line.textContent = "Dropped " + h.drops_total + " packets (" + (h.drops_total / total * 100).toFixed(2) +
          "% of all, " + last.toFixed(2) + "% now)" + (h.last_drop ? "; last drop " + when(h.last_drop) : "");
        line.className = "bad";
      } else {
        line.textContent = "No drops.";
        line.className = "";
      }
    });
  }

  function pairQuery(p) {
    return "src_vn=" + encodeURIComponent(p.src_vn) + "&dst_vn=" + encodeURIComponent(p.dst_vn);
  }
  function streamCmd(q) {
    return "curl -sN " + (token() ? "-H \"Authorization: Bearer $TOKEN\" " : "") + "'" + location.origin +
      "/api/stream" + (q ? "?" + q : "") + "' | wireshark -k -i -";
  }

  // download fetches url with the token and saves the answer: links to
  // /api/pcap cannot carry the header, and the token stays out of URLs.
  function download(url, name) {
    api(url).then(function (r) { return r.blob(); }).then(function (b) {
      const a = el("a");
      a.href = URL.createObjectURL(b);
      a.download = name;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(function () { URL.revokeObjectURL(a.href); }, 60000);
      showError("");
    }, showError);
  }

  function pcapLink(p) {
    const a = el("a", "download");
    a.className = "dl";
    const href = function () {
      let q = pairQuery(p);
      const s = fromInput($("dlsince").value), u = fromInput($("dluntil").value);
      if (s) q += "&since=" + encodeURIComponent(s);
      if (u) q += "&until=" + encodeURIComponent(u);
      return "/api/pcap?" + q;
    };
    a.href = href();
    a.title = "the pair's packets in the time range above, as pcapng";
    a.addEventListener("click", function (e) {
      a.href = href();
      if (!token()) return;
      e.preventDefault();
      download(a.href, (p.src_vn + "_" + p.dst_vn).replace(/[^\w.-]+/g, "_") + ".pcapng");
    });
    return a;
  }

  // vnCell shows a VN's FQ name breaking only after its colons, so that
  // domain, project and network each stay on one line.
  function vnCell(tr, name) {
    const td = cell(tr, "", "vn");
    name.split(":").forEach(function (part, i, all) {
      td.appendChild(el("span", part + (i < all.length - 1 ? ":" : ""), "seg"));
      if (i < all.length - 1) td.appendChild(el("wbr"));
    });
    td.title = name;
    return td;
  }

  function loadStats() {
    return json("/api/stats?pairs=100").then(function (s) {
      const body = document.querySelector("#pairs tbody");
      body.replaceChildren();
      (s.vn_pairs || []).forEach(function (p) {
        const tr = el("tr");
        tr.dataset.pair = p.src_vn + " " + p.dst_vn;
        vnCell(tr, p.src_vn);
        vnCell(tr, p.dst_vn);
        // Bytes under the packets: one more column would not fit 800 px.
        cell(tr, String(p.packets), "num").appendChild(el("div", si(p.bytes || 0, "B"), "bytes"));
        cell(tr, si(p.packets_per_s || 0, "pkt/s"), "num rate");
        cell(tr, clock(p.last_seen), "seen");
        const act = cell(tr, "");
        const b = el("button", "stream", "link");
        b.title = "show the command that streams this pair live into Wireshark";
        b.addEventListener("click", function () { $("streamcmd").textContent = streamCmd(pairQuery(p)); });
        act.appendChild(b);
        act.appendChild(pcapLink(p));
        body.appendChild(tr);
      });
      $("pairsnote").textContent = s.vn_pairs_total > (s.vn_pairs || []).length ?
        "busiest " + s.vn_pairs.length + " of " + s.vn_pairs_total : "";

      const p = s.pipeline;
      let malformed = 0;
      Object.values(p.malformed || {}).forEach(function (v) { malformed += v; });
      const rows = [
        ["Packets read", p.packets_read],
        ["Bytes read", size(p.bytes_read)],
        ["Decoded", Object.entries(p.decoded || {}).map(function (e) { return e[0] + " " + e[1]; }).join(", ")],
        ["Malformed", malformed],
        ["Filtered", p.filtered],
        ["Written", p.written],
        ["VN pairs", s.vn_pairs_total],
        ["Kernel drops", s.source ? s.source.kernel_drops : "n/a"],
        ["Stream clients", s.stream_clients],
        ["Stream drops", s.stream_drops],
        ["Disk usage", size(s.disk_usage_bytes)],
      ];
      const tb = document.querySelector("#stats tbody");
      tb.replaceChildren();
      rows.forEach(function (r) {
        const tr = el("tr");
        cell(tr, r[0]);
        cell(tr, String(r[1]), "num");
        tb.appendChild(tr);
      });
    });
  }

  // The files' page and selection live in the fragment
  // (#offset=N&vn=…&since=…&until=…), so that they survive a reload.
  function sel() { return new URLSearchParams(location.hash.slice(1)); }
  function offset() { return Number(sel().get("offset")) || 0; }
  function go(changes) {
    const q = sel();
    Object.keys(changes).forEach(function (k) {
      if (changes[k]) q.set(k, changes[k]); else q.delete(k);
    });
    const s = q.toString();
    location.hash = s ? "#" + s : "";
  }

  function hourOf(t) {
    if (!t) return "no packets yet";
    const d = new Date(t);
    d.setMinutes(0, 0, 0);
    return d.toLocaleString([], { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  }

  function loadCaptures() {
    const s = sel(), off = offset();
    let q = "order=newest&limit=" + pageSize + "&offset=" + off + "&pairs=" + pairsShown;
    ["vn", "since", "until"].forEach(function (k) { if (s.get(k)) q += "&" + k + "=" + encodeURIComponent(s.get(k)); });
    return api("/api/captures?" + q).then(function (r) {
      const total = Number(r.headers.get("X-Total-Count") || 0);
      return r.json().then(function (files) { return { files: files, total: total }; });
    }).then(function (res) {
      const files = res.files, total = res.total;
      $("range").textContent = files.length ?
        (off + 1) + "\u2013" + (off + files.length) + " of " + total : "none of " + total;
      $("newer").disabled = off === 0;
      $("older").disabled = off + files.length >= total;
      const body = document.querySelector("#captures tbody");
      body.replaceChildren();
      let hour = null;
      files.forEach(function (f) {
        const h = hourOf(f.first_packet);
        if (h !== hour) {
          hour = h;
          const hr = el("tr", null, "hour");
          const th = el("th", h);
          th.colSpan = 6;
          hr.appendChild(th);
          body.appendChild(hr);
        }
        const tr = el("tr");
        tr.dataset.name = f.name;
        const a = el("a", f.name, "name");
        a.href = f.download;
        a.title = f.name;
        cell(tr, "").appendChild(a);
        const sz = cell(tr, size(f.size), "num size");
        sz.title = f.size + " bytes";
        cell(tr, clock(f.first_packet) + (f.last_packet ? "\u2013" + clock(f.last_packet) : ""), "times");
        cell(tr, String(f.packets), "num");
        const pc = cell(tr, "", "pairs");
        (f.vn_pairs || []).forEach(function (p) {
          const t = p.src_vn + " \u2192 " + p.dst_vn + " (" + p.packets + ")";
          const d = el("div", t);
          d.title = t;
          pc.appendChild(d);
        });
        if (f.vn_pairs_total > (f.vn_pairs || []).length) pc.appendChild(el("div", "and " + (f.vn_pairs_total - f.vn_pairs.length) + " more"));
        const act = cell(tr, "");
        if (f.open) {
          act.textContent = "writing";
        } else {
          const b = el("button", "Delete");
          b.addEventListener("click", function () {
            if (!confirm("Delete " + f.name + "?")) return;
            api("/api/captures/" + encodeURIComponent(f.name), { method: "DELETE" })
              .then(loadCaptures).then(function () { showError(""); }, showError);
          });
          act.appendChild(b);
        }
        body.appendChild(tr);
      });
    });
  }

  $("newer").addEventListener("click", function () { go({ offset: Math.max(0, offset() - pageSize) }); });
  $("older").addEventListener("click", function () { go({ offset: offset() + pageSize }); });
  $("filter").addEventListener("submit", function (e) {
    e.preventDefault();
    go({ offset: 0, vn: $("fvn").value.trim(), since: fromInput($("fsince").value), until: fromInput($("funtil").value) });
  });
  (function () {
    const s = sel();
    $("fvn").value = s.get("vn") || "";
    if (s.get("since")) $("fsince").value = localInput(new Date(s.get("since")));
    if (s.get("until")) $("funtil").value = localInput(new Date(s.get("until")));
    const now = new Date();
    $("dlsince").value = localInput(new Date(now - 3600e3));
    $("dluntil").value = localInput(now);
  })();
  window.addEventListener("hashchange", function () { loadCaptures().then(function () { showError(""); }, showError); });

  function refresh() {
    $("streamcmd").textContent = streamCmd("");
    return Promise.all([loadInfo(), loadHistory(), loadStats(), loadCaptures()])
      .then(function () { showError(""); document.body.dataset.loaded = "1"; }, showError);
  }
  refresh();
  setInterval(function () {
    if (!$("login").hidden) return;
    Promise.all([loadInfo(), loadHistory(), loadStats()]).then(function () { showError(""); }, showError);
  }, 5000);
  setInterval(function () { if ($("login").hidden) loadCaptures().catch(showError); }, 15000);
})();
