"use strict";
// The page polls the read-only API and re-renders: a policy applied with
// `calico apply` shows in the matrix within a poll, without a reload.
let flowSeq = 0;
const flowRows = [];
let matrixData = null;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}
function table(head, rows) {
  const t = el("table");
  t.append(el("tr", {}, ...head.map(h => el("th", {}, h))));
  for (const r of rows) t.append(el("tr", {}, ...r.map(c => c instanceof Node ? c : el("td", {}, c))));
  return t;
}
function labels(l) {
  return Object.entries(l || {}).map(([k, v]) => k + "=" + v).sort().join(", ");
}
function replace(id, node) {
  const box = document.getElementById(id);
  box.replaceChildren(node);
}
function name(e) { return e.container || e.id; }

function explain(cell) {
  if (!cell.result) return cell.from + " -> " + cell.to + ": " + (cell.skipped || "");
  const r = cell.result;
  const out = [r.summary];
  for (const [side, s] of [["egress", r.egress], ["ingress", r.ingress]]) {
    if (!s.applies) continue;
    out.push(side + " of " + s.endpoint.id + ":");
    for (const st of s.steps || []) {
      out.push("  " + st.kind + (st.chain ? " " + st.chain : "") + (st.rule >= 0 ? " rule " + st.rule : "") + ": " + st.detail);
    }
  }
  return out.join("\n");
}

async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(url + ": " + r.status + " " + (await r.text()));
  return r.json();
}

async function refresh() {
  try {
    const [c, m] = await Promise.all([getJSON("api/cluster"), getJSON("api/matrix")]);
    replace("hosts", table(["HOST", "ADDRESSES", "ENDPOINTS"], (c.hosts || []).map(h => [h.name, (h.addresses || []).join(" "), h.endpoints])));
    const peers = (c.node && c.node.peers) || [];
    replace("bgp", peers.length ? table(["PEER", "TYPE", "STATE", "INFO"], peers.map(p => [p.Address, p.Type, p.State, p.Info || ""]))
      : el("p", { class: "hint" }, "BGP sessions: no answer from this host's node, or no peers"));
    const nets = el("div");
    for (const n of c.networks || []) {
      nets.append(el("h3", {}, n.name));
      nets.append(table(["ENDPOINT", "HOST", "ADDRESSES", "LABELS"], n.endpoints.map(e => [name(e), e.node, (e.addrs || []).join(" "), el("td", { class: "labels" }, labels(e.labels))])));
    }
    replace("networks", nets);
    replace("policies", table(["#", "POLICY", "ORDER", "SELECTOR", "TYPES", "RULES (IN/OUT)"],
      (c.policies || []).map((p, i) => [i + 1, p.id, p.order === undefined ? "" : p.order, p.selector || "all()", (p.types || []).join(","), p.ingressRules + "/" + p.egressRules])));
    matrixData = m;
    const eps = m.endpoints || [];
    const t = el("table", { id: "matrix-table" });
    t.append(el("tr", {}, el("th", {}, "FROM \\ TO"), ...eps.map(e => el("th", {}, name(e)))));
    (m.cells || []).forEach((row, i) => {
      const tr = el("tr", {}, el("th", {}, name(eps[i])));
      row.forEach((cell, j) => {
        const cls = i === j ? "self" : cell.allowed ? "allow" : "deny";
        const td = el("td", { class: cls, "data-from": cell.from, "data-to": cell.to, title: cell.result ? cell.result.summary : (cell.skipped || "") },
          i === j ? "-" : cell.allowed ? "allow" : "deny");
        td.addEventListener("click", () => { document.getElementById("explain").textContent = explain(cell); });
        tr.append(td);
      });
      t.append(tr);
    });
    replace("matrix", t);
    const f = await getJSON("api/flows?since=" + flowSeq);
    flowSeq = f.seq || flowSeq;
    for (const r of f.records || []) flowRows.unshift(r);
    flowRows.splice(200);
    // One side: name, address, network and labels (without the docker.*
    // ones, shown as name and network).
    const side = (name, id, addr, net, labels) => [name || id || "", addr, net || "",
      Object.entries(labels || {}).filter(([k]) => !k.startsWith("docker.")).map(([k, v]) => k + "=" + v).sort().join(",")]
      .filter(x => x).join(" ");
    replace("flows", table(["TIME", "HOST", "SOURCE", "DESTINATION", "PROTO", "BY", "PACKETS"], flowRows.map(r =>
      [new Date(r.end).toLocaleTimeString(), r.host || "", side(r.srcName, r.srcEndpoint, r.src, r.srcNetwork, r.srcLabels),
       side(r.dstName, r.dstEndpoint, r.dst, r.dstNetwork, r.dstLabels), r.proto,
       (r.policy ? r.policy + " rule " + r.rule : r.reason) + " [" + r.direction + "]", r.packets])));
    document.getElementById("status").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    document.getElementById("status").textContent = "error: " + e.message;
  }
}
refresh();
setInterval(refresh, 2000);
