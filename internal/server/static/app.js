"use strict";
(function () {
  // A token given once as ?token= is kept for the tab and taken off the
  // address bar. It only ever travels in the Authorization header: links
  // to files are signed by the server and expire.
  const params = new URLSearchParams(location.search);
  if (params.has("token")) {
    sessionStorage.setItem("vrsniff-token", params.get("token"));
    params.delete("token");
    const q = params.toString();
    history.replaceState(null, "", location.pathname + (q ? "?" + q : "") + location.hash);
  }
  const token = sessionStorage.getItem("vrsniff-token") || "";

  // Files are listed newest first, pageSize at a time; the fragment
  // (#offset=N) says which page, so that it survives a reload.
  const pageSize = 100;
  const pairsShown = 5;

  function api(path, opts) {
    opts = opts || {};
    if (token) {
      opts.headers = Object.assign({}, opts.headers, { "Authorization": "Bearer " + token });
    }
    return fetch(path, opts).then(function (r) {
      if (!r.ok && r.status !== 204) {
        return r.text().then(function (t) { throw new Error(r.status + ": " + t.trim()); });
      }
      return r;
    });
  }

  function offset() {
    const m = /^#offset=(\d+)$/.exec(location.hash);
    return m ? Number(m[1]) : 0;
  }

  function size(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
  }

  function when(t) { return t ? new Date(t).toLocaleString() : ""; }

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function showError(e) { document.getElementById("error").textContent = e ? String(e.message || e) : ""; }

  function loadCaptures() {
    const off = offset();
    const q = "order=newest&limit=" + pageSize + "&offset=" + off + "&pairs=" + pairsShown;
    return api("/api/captures?" + q).then(function (r) {
      const total = Number(r.headers.get("X-Total-Count") || 0);
      return r.json().then(function (files) { return { files: files, total: total }; });
    }).then(function (res) {
      const files = res.files, total = res.total;
      document.getElementById("range").textContent = files.length ?
        (off + 1) + "\u2013" + (off + files.length) + " of " + total : "none of " + total;
      document.getElementById("newer").disabled = off === 0;
      document.getElementById("older").disabled = off + files.length >= total;
      const body = document.querySelector("#captures tbody");
      body.replaceChildren();
      files.forEach(function (f) {
        const tr = document.createElement("tr");
        tr.dataset.name = f.name;
        const a = document.createElement("a");
        a.href = f.download;
        a.textContent = f.name;
        a.className = "name";
        cell(tr, "").appendChild(a);
        const sz = cell(tr, size(f.size), "num size");
        sz.title = f.size + " bytes";
        cell(tr, when(f.first_packet));
        cell(tr, when(f.last_packet));
        cell(tr, String(f.packets), "num");
        const pairs = (f.vn_pairs || []).map(function (p) {
          return p.src_vn + " \u2192 " + p.dst_vn + " (" + p.packets + ")";
        });
        if (f.vn_pairs_total > pairs.length) pairs.push("and " + (f.vn_pairs_total - pairs.length) + " more");
        cell(tr, pairs.join("\n"), "pairs");
        const act = cell(tr, "");
        if (f.open) {
          act.textContent = "writing";
        } else {
          const b = document.createElement("button");
          b.textContent = "Delete";
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

  function loadStats() {
    return api("/api/stats?pairs=0").then(function (r) { return r.json(); }).then(function (s) {
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
      const body = document.querySelector("#stats tbody");
      body.replaceChildren();
      rows.forEach(function (r) {
        const tr = document.createElement("tr");
        cell(tr, r[0]);
        cell(tr, String(r[1]), "num");
        body.appendChild(tr);
      });
    });
  }

  function go(off) {
    location.hash = off > 0 ? "#offset=" + off : "";
  }
  document.getElementById("newer").addEventListener("click", function () { go(Math.max(0, offset() - pageSize)); });
  document.getElementById("older").addEventListener("click", function () { go(offset() + pageSize); });
  window.addEventListener("hashchange", function () { loadCaptures().then(function () { showError(""); }, showError); });

  document.getElementById("streamcmd").textContent = "curl -sN " +
    (token ? "-H \"Authorization: Bearer $TOKEN\" " : "") + "'" + location.origin + "/api/stream' | wireshark -k -i -";

  function tick() {
    Promise.all([loadCaptures(), loadStats()]).then(function () { showError(""); }, showError);
  }
  tick();
  setInterval(loadStats, 2000);
  setInterval(loadCaptures, 10000);
})();
