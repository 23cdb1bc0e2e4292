// Domain details of the cxone-audit batch report.
//
// The results are embedded in script elements: "cxa-data" holds the words,
// the findings catalogue and an index of the rows, and "cxa-chunk-N" the
// domains, a few thousand each (JSON, or gzipped in base64 for large
// runs). A chunk is unpacked when one of its rows is first shown.
// This script builds the details of the chosen domain with DOM calls and
// textContent only, so text from DNS or from a spreadsheet is never parsed
// as HTML.
(function () {
  "use strict";

  const root = document.getElementById("cxa-details");
  if (!root || root.dataset.ready) {
    return;
  }
  root.dataset.ready = "1";

  const source = document.getElementById("cxa-data");
  const picker = document.getElementById("cxa-pick");
  const choices = document.getElementById("cxa-pick-list");
  const body = document.getElementById("cxa-detail-body");

  // Large chunks come gzipped in base64 (see cxone_audit.report).
  async function readElement(node) {
    if (node.dataset.encoding !== "gzip+base64") {
      return JSON.parse(node.textContent);
    }
    const bytes = Uint8Array.from(atob(node.textContent.trim()),
      (c) => c.charCodeAt(0));
    const stream = new Blob([bytes]).stream()
      .pipeThrough(new DecompressionStream("gzip"));
    return JSON.parse(await new Response(stream).text());
  }

  let rows = [];
  let answers = [];
  let statuses = {};
  let titles = {};
  let catalogue = {};
  let chunkRows = 1;
  // Unpacked chunks by number; a promise each, so two clicks unpack once.
  const chunks = new Map();

  function chunk(number) {
    if (!chunks.has(number)) {
      const node = document.getElementById("cxa-chunk-" + number);
      chunks.set(number, readElement(node));
    }
    return chunks.get(number);
  }
  const results = new Set(["pass", "fail", "softfail", "neutral", "none",
    "permerror", "temperror"]);
  const severities = new Set(["critical", "high", "medium", "low", "info"]);
  const coverage = new Set(["present", "covered", "missing"]);
  const findingKeys = new Set(["code", "severity", "title", "detail",
    "explanation", "action", "rfc"]);
  const looksLikeRecord = /^(v=spf1|v=DMARC1|\S+\.\s+\d+\s+IN\s)/i;
  const shown = new Set(["row", "input", "domain", "region", "region_name",
    "status", "reason", "notes", "columns", "spf", "ips", "evidence",
    "findings", "proposal", "allowlist"]);

  // Lookups from what a user may type to an index in `rows`.
  const byLabel = new Map();
  const byRow = new Map();
  const byName = new Map();

  function label(d) {
    const name = d.domain || d.input || "(empty cell)";
    return name + " \u00b7 " + (d.region || "no region") + " \u00b7 row "
      + d.row;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function pill(value, known, prefix) {
    const span = el("span", "cxa-pill", value);
    if (known.has(value)) {
      span.classList.add(prefix + value);
    }
    return span;
  }

  function code(text) {
    return el("pre", "cxa-code", text);
  }

  function section(title, part) {
    const node = el("section", "cxa-d-section");
    node.dataset.part = part;
    node.append(el("h3", null, title));
    return node;
  }

  function cell(content, className) {
    const td = el("td", className);
    if (content instanceof Node) {
      td.append(content);
    } else if (content !== undefined && content !== null && content !== "") {
      td.textContent = String(content);
    }
    return td;
  }

  function table(headers, rows) {
    const tbl = el("table");
    if (headers) {
      const head = tbl.createTHead().insertRow();
      for (const name of headers) {
        head.append(el("th", null, name));
      }
    }
    const tbody = tbl.createTBody();
    for (const values of rows) {
      const tr = tbody.insertRow();
      for (const value of values) {
        tr.append(cell(value));
      }
    }
    return tbl;
  }

  function pairs(entries) {
    const tbl = table(null, entries.map(
      ([k, v]) => [String(k).replace(/_/g, " "), render(v, 1)]));
    tbl.className = "cxa-pairs";
    return tbl;
  }

  function lines(items, className) {
    const box = el("div");
    for (const item of items) {
      box.append(el("div", className, item));
    }
    return box;
  }

  // Any JSON value as DOM: scalars as text, lists and objects as tables.
  function isTuple(value) {
    return Array.isArray(value) && value.length > 0
      && value.every((v) => v !== null && typeof v !== "object");
  }

  function render(value, depth) {
    if (value === null || value === undefined || value === "") {
      return el("span", "cxa-d-empty", "\u2014");
    }
    if (typeof value === "boolean") {
      return document.createTextNode(value ? "yes" : "no");
    }
    if (typeof value !== "object") {
      const text = String(value);
      return looksLikeRecord.test(text) ? el("span", "cxa-mono", text)
        : document.createTextNode(text);
    }
    if (depth > 6) {
      return document.createTextNode(JSON.stringify(value));
    }
    if (Array.isArray(value)) {
      if (value.length === 0) {
        return el("span", "cxa-d-empty", "none");
      }
      if (value.every((v) => v && typeof v === "object" && !Array.isArray(v))) {
        const keys = [...new Set(value.flatMap((v) => Object.keys(v)))];
        return table(keys, value.map(
          (v) => keys.map((k) => render(v[k], depth + 1))));
      }
      const list = el("ul");
      for (const item of value) {
        const li = el("li");
        // A tuple of plain values in a list (an MX host as [preference,
        // name]) is one line, not a list inside a list.
        li.append(isTuple(item) ? render(item.join(" "), depth + 1)
          : render(item, depth + 1));
        list.append(li);
      }
      return list;
    }
    return pairs(Object.entries(value));
  }

  function header(d) {
    const box = el("div", "cxa-d-head");
    box.append(el("span", "cxa-d-name", d.domain || d.input || "(empty cell)"));
    const region = d.region
      ? d.region + (d.region_name ? " (" + d.region_name + ")" : "")
      : "no region";
    box.append(el("span", "cxa-d-region", region));
    box.append(pill(d.status, new Set(Object.keys(statuses)), "cxa-s-"));
    box.append(el("span", "cxa-d-region", statuses[d.status] || ""));
    return [box, el("p", "cxa-d-reason", d.reason)];
  }

  function inputSection(d) {
    const node = section("Input row", "input");
    const rows = [["row", d.row], ["cell as written", d.input]];
    if (d.notes && d.notes.length) {
      rows.push(["normalisation", d.notes.join("; ")]);
    }
    for (const [name, value] of Object.entries(d.columns || {})) {
      rows.push([name, value]);
    }
    node.append(pairs(rows));
    return node;
  }

  function spfSection(spf, status) {
    const node = section("SPF record", "spf");
    if (status === "input-error" || status === "dns-error") {
      // Nothing is known about the record: never say "no SPF record".
      node.append(el("p", "cxa-d-empty", status === "dns-error"
        ? "unknown: the DNS lookup failed (see the reason above)"
        : "not looked up: the row could not be audited"));
      if (spf.reason) {
        node.append(pairs([["problem", spf.reason]]));
      }
      return node;
    }
    if (spf.record) {
      node.append(code(spf.record));
    } else if (spf.records && spf.records.length > 1) {
      node.append(el("p", null, spf.records.length
        + " v=spf1 records (RFC 7208 4.5: permerror):"));
      for (const record of spf.records) {
        node.append(code(record));
      }
    } else {
      node.append(el("p", "cxa-d-empty", "no SPF record"));
    }
    const facts = [
      ["DNS-querying terms", spf.dns_lookups + " of 10"],
      ["void lookups", spf.void_lookups + " of 2"],
      ["result for an unlisted IP", spf.result],
    ];
    if (spf.strings && spf.strings.length > 1) {
      facts.push(["TXT strings", spf.strings]);
    }
    if (spf.reason) {
      facts.push(["problem", spf.reason]);
    }
    node.append(pairs(facts));
    return node;
  }

  function ipSection(ips) {
    const node = section("CXone SPF IPs of the region", "ips");
    if (!ips || !ips.length) {
      node.append(el("p", "cxa-d-empty", "not evaluated"));
      return node;
    }
    node.append(table(
      ["IP", "result", "deciding term", "in the record of", "include path",
        "why"],
      ips.map((v) => [
        el("span", "cxa-mono", v.ip),
        pill(v.result, results, "cxa-r-"),
        v.matched ? el("span", "cxa-mono", v.matched)
          : (v.reason ? "" : "none matched: default result"),
        v.matched_in,
        (v.path || []).join(" \u203a "),
        v.reason,
      ])));
    return node;
  }

  function findingsSection(findings) {
    const node = section("Findings", "findings");
    for (const f of findings) {
      const box = el("div", "cxa-finding");
      const head = el("div", "cxa-finding-head");
      head.append(pill(f.severity, severities, "cxa-sev-"),
        el("span", "cxa-finding-title", f.title || f.code),
        el("span", "cxa-mono cxa-muted", f.code));
      if (f.rfc) {
        head.append(el("span", "cxa-muted", f.rfc));
      }
      box.append(head);
      if (f.detail) {
        box.append(el("p", null, f.detail));
      }
      if (f.explanation) {
        box.append(el("p", "cxa-muted", f.explanation));
      }
      if (f.action) {
        const action = el("p", "cxa-action");
        action.append(el("strong", null, "What to do: "),
          document.createTextNode(String(f.action)));
        box.append(action);
      }
      const rest = Object.entries(f).filter(([k]) => !findingKeys.has(k));
      if (rest.length) {
        const more = el("details", "cxa-more");
        more.append(el("summary", null, rest.map(([k]) => k).join(", ")),
          pairs(rest));
        box.append(more);
      }
      node.append(box);
    }
    return node;
  }

  function proposalSection(proposal) {
    const node = section("Proposed record", "proposal");
    if (proposal.record) {
      node.append(code(proposal.record));
    }
    const rest = Object.entries(proposal).filter(([k]) => k !== "record");
    if (rest.length) {
      node.append(pairs(rest));
    }
    return node;
  }

  // The current allowlist against the region's CXone allowlist IPs: one
  // row per IP, then the entries worth a look (see cxone_audit.allowlist).
  function allowlistSection(a) {
    const node = section(titles.allowlist || "Allowlist", "allowlist");
    if (a.error) {
      node.append(pairs([["file", a.file], ["not read", a.error]]));
      return node;
    }
    const ips = a.ips || [];
    const accepted = ips.length - (a.missing || []).length;
    node.append(pairs([
      ["file", a.file],
      ["entries", a.entries],
      ["CXone allowlist IPs of " + (a.region || "the region"),
        accepted + " of " + ips.length + " accepted"],
    ]));
    node.append(table(
      ["IP", "status", "entry", "covering network", "refused first by"],
      ips.map((c) => [
        el("span", "cxa-mono", c.ip),
        pill(c.status, coverage, "cxa-a-"),
        c.entry,
        c.network,
        c.refused_by,
      ])));
    const notes = [
      ["entries with other regions' CXone IPs", a.other_region],
      ["entries not read", a.unparsed],
      ["entries that refuse mail", a.ignored],
      ["IPv6 entries (CXone's tables are IPv4 only)", a.ipv6],
      ["warnings", a.warnings],
    ].filter(([, items]) => items && items.length);
    if (notes.length) {
      node.append(pairs(notes));
    }
    return node;
  }

  function evidenceSection(indexes) {
    const node = section("DNS evidence", "evidence");
    if (!indexes || !indexes.length) {
      node.append(el("p", "cxa-d-empty", "no DNS question was asked"));
      return node;
    }
    node.append(table(
      ["name", "type", "answer", "records", "note"],
      indexes.map((i) => answers[i]).map((a) => [
        el("span", "cxa-mono", a.name),
        a.type,
        a.rcode,
        lines(a.records || [], "cxa-mono"),
        [a.detail, a.cnames && a.cnames.length
          ? "via CNAME " + a.cnames.join(" \u203a ") : "",
        a.size ? a.size + " octets" : ""].filter(Boolean).join("; "),
      ])));
    return node;
  }

  function otherSections(d) {
    const nodes = [];
    for (const [key, value] of Object.entries(d)) {
      if (shown.has(key) || value === null || value === undefined) {
        continue;
      }
      const node = section(titles[key] || key, key);
      node.append(render(value, 1));
      nodes.push(node);
    }
    return nodes;
  }

  // Shows row `index` once its chunk is unpacked; a later choice wins.
  let wanted = -1;
  async function show(index) {
    wanted = index;
    const part = await chunk(Math.floor(index / chunkRows));
    if (wanted !== index) {
      return;
    }
    answers = part.answers;
    showDomain(part.domains[index % chunkRows]);
  }

  function showDomain(d) {
    const parts = [...header(d), inputSection(d)];
    if (d.spf) {
      parts.push(spfSection(d.spf, d.status), ipSection(d.ips));
    }
    if (d.findings && d.findings.length) {
      // The catalogue's words for a code are stored once, not per row.
      parts.push(findingsSection(d.findings.map(
        (f) => ({ ...catalogue[f.code], ...f }))));
    }
    if (d.proposal) {
      parts.push(proposalSection(d.proposal));
    }
    parts.push(...otherSections(d));
    if (d.allowlist) {
      parts.push(allowlistSection(d.allowlist));
    }
    parts.push(evidenceSection(d.evidence));
    body.replaceChildren(...parts);
    body.dataset.row = String(d.row);
  }

  function find(text, final) {
    const wanted = text.trim();
    if (byLabel.has(wanted)) {
      return byLabel.get(wanted);
    }
    if (/^\d+$/.test(wanted) && byRow.has(wanted)) {
      return byRow.get(wanted);
    }
    const name = wanted.toLowerCase().replace(/\.$/, "");
    if (byName.has(name)) {
      return byName.get(name);
    }
    return final ? onlyMatch(name) : -1;
  }

  // Part of a name, when exactly one row's name holds it.
  function onlyMatch(part) {
    if (part.length < 3) {
      return -1;
    }
    let found = -1;
    for (const [name, index] of byName) {
      if (name.includes(part)) {
        if (found >= 0 && found !== index) {
          return -1;
        }
        found = index;
      }
    }
    return found;
  }

  function choose(final) {
    const index = find(picker.value, final);
    if (index >= 0) {
      show(index).catch(failed);
    } else if (final && picker.value.trim()) {
      body.replaceChildren(el("p", "cxa-d-empty",
        "No row matches \u201c" + picker.value + "\u201d."));
    }
  }

  function buildIndex(index) {
    rows = index.map(([row, domain, input, region]) =>
      ({ row, domain, input, region }));
    const options = document.createDocumentFragment();
    rows.forEach((d, i) => {
      const text = label(d);
      byLabel.set(text, i);
      byRow.set(String(d.row), i);
      for (const name of [d.domain, d.input]) {
        const key = (name || "").toLowerCase();
        if (key && !byName.has(key)) {
          byName.set(key, i);
        }
      }
      const option = document.createElement("option");
      option.value = text;
      options.append(option);
    });
    choices.append(options);
  }

  picker.addEventListener("input", () => choose(false));
  picker.addEventListener("change", () => choose(true));
  picker.disabled = true;

  function failed(error) {
    body.replaceChildren(el("p", "cxa-d-empty",
      "This browser cannot read the details embedded in the page ("
      + error + "); results.json next to this report holds the same data."));
  }

  readElement(source).then((head) => {
    ({ statuses, titles, catalogue } = head);
    chunkRows = head.chunk_rows;
    buildIndex(head.index);
    picker.disabled = false;
    root.dataset.loaded = "1";
    if (picker.value) {
      choose(true);
    }
  }).catch(failed);

  // A click on a row of the domains table shows that row's details.
  document.addEventListener("click", (event) => {
    const tr = event.target.closest("#cxa-domains tbody tr");
    if (!tr || !tr.cells.length) {
      return;
    }
    const index = byRow.get(tr.cells[0].textContent.trim());
    if (index === undefined) {
      return;
    }
    picker.value = label(rows[index]);
    show(index).catch(failed);
    root.scrollIntoView({ block: "start" });
  });
})();
