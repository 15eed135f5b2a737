// The admin page: projects, uploads, invitations, progress, agreement, export.
"use strict";

(() => {
  const { takeToken, api, el } = alignlab;
  const $ = (id) => document.getElementById(id);
  let token = takeToken("alignlab-admin");
  // The status line says what the last action did; a success fades after a few seconds and every new action
  // clears it, so it never describes an older state of the page.
  let sayTimer = null;
  const say = (text, isError) => {
    clearTimeout(sayTimer);
    $("message").textContent = text || "";
    $("message").className = isError ? "error" : "";
    if (text && !isError) sayTimer = setTimeout(() => say(""), 6000);
  };

  // Invitation links made in this tab, kept in sessionStorage so a reload still shows them (the server stores
  // tokens only as hashes and cannot show a link again; "New link" makes another).
  const INVITES = "alignlab-invites";
  const invites = () => JSON.parse(sessionStorage.getItem(INVITES) || "{}");
  function remember(projectId, r) {
    const all = invites();
    all[projectId + "/" + r.annotator_id] = { link: r.link, expires_at: r.expires_at };
    sessionStorage.setItem(INVITES, JSON.stringify(all));
  }

  function parseAspects(text) {
    const aspects = {};
    for (const part of text.split(",").map((s) => s.trim()).filter(Boolean)) {
      const m = /^([^=]+)=(-?\d+)-(-?\d+)$/.exec(part);
      if (!m) throw new Error("Aspects: write NAME=MIN-MAX, e.g. helpfulness=1-5");
      aspects[m[1].trim()] = { min: Number(m[2]), max: Number(m[3]) };
    }
    return aspects;
  }

  async function start() {
    if (!token) { $("token-form").hidden = false; return; }
    try { await api(token, "GET", "/api/admin/whoami"); } catch (err) {
      sessionStorage.removeItem("alignlab-admin"); token = null; $("token-form").hidden = false; say(err.message, true); return;
    }
    $("token-form").hidden = true;
    $("admin").hidden = false;
    await refresh();
  }

  async function refresh() {
    const projects = await api(token, "GET", "/api/admin/projects");
    $("projects").replaceChildren(...projects.map(projectCard));
  }

  function projectCard(p) {
    const pr = p.progress;
    const card = el("article", { class: "project", "data-project": p.name },
      el("h3", {}, p.name),
      el("p", {}, p.kinds.join(", ") + " · " + p.per_task + " annotator(s) per task"),
      el("div", { class: "progress" }, el("div", { style: "" })),
      el("p", { class: "progress-line" }, pr.labels + " / " + pr.target_labels + " labels · " + pr.complete_tasks + " / " + pr.tasks + " tasks complete"));
    card.querySelector(".progress div").style.width = (100 * pr.fraction).toFixed(1) + "%";

    const file = el("input", { type: "file", accept: ".jsonl,.json,application/x-ndjson", class: "upload-file" });
    const upload = el("button", { type: "button", class: "upload" }, "Upload tasks (JSONL records)");
    upload.addEventListener("click", async () => {
      if (!file.files.length) { say("Choose a JSONL file first.", true); return; }
      try {
        const text = await file.files[0].text();
        const r = await api(token, "POST", "/api/admin/projects/" + p.id + "/tasks.jsonl", undefined, text);
        say("Added " + r.added + " tasks to " + p.name + ".");
        await refresh();
      } catch (err) { say(err.message, true); }
    });

    const name = el("input", { placeholder: "annotator name", class: "invite-name" });
    const password = el("input", { placeholder: "password (optional)", type: "password", class: "invite-password", autocomplete: "new-password" });
    const invite = el("button", { type: "button", class: "invite" }, "Invite");
    const people = el("div", { class: "annotators" });
    invite.addEventListener("click", async () => {
      say("");
      try {
        const body = { name: name.value };
        if (password.value) body.password = password.value;
        const r = await api(token, "POST", "/api/admin/projects/" + p.id + "/annotators", body);
        remember(p.id, r);
        name.value = ""; password.value = "";
        say("Invited " + r.name + ": send them the link in the annotators table.");
        await showAnnotators(p, people);
      } catch (err) { say(err.message, true); }
    });

    const statsBox = el("div", { class: "stats-box" });
    const stats = el("button", { type: "button", class: "show-stats" }, "Refresh statistics");
    stats.addEventListener("click", () => { say(""); showStats(p, statsBox); });

    const format = el("select", { class: "export-format" }, el("option", { value: "records" }, "alignlab records"), el("option", { value: "trl" }, "TRL prompt/chosen/rejected"));
    const aggregate = el("select", { class: "export-aggregate" }, ...["majority", "mean", "all"].map((a) => el("option", { value: a }, a)));
    const exportButton = el("button", { type: "button", class: "export" }, "Download export");
    exportButton.addEventListener("click", async () => {
      try {
        const response = await fetch("/api/admin/projects/" + p.id + "/export?format=" + format.value + "&aggregate=" + aggregate.value, { headers: { Authorization: "Bearer " + token } });
        if (!response.ok) throw new Error((await response.json()).detail);
        const url = URL.createObjectURL(await response.blob());
        const a = el("a", { href: url, download: p.name + "-" + format.value + "-" + aggregate.value + ".jsonl" });
        document.body.append(a); a.click(); a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10000);
      } catch (err) { say(err.message, true); }
    });

    card.append(
      el("div", { class: "row" }, file, upload),
      el("h4", {}, "Invite an annotator"),
      el("div", { class: "row" }, name, password, invite), people,
      el("div", { class: "row" }, format, aggregate, exportButton),
      el("div", { class: "row" }, stats), statsBox);
    showAnnotators(p, people);
    showStats(p, statsBox);
    return card;
  }

  async function showAnnotators(p, box) {
    try {
      const list = await api(token, "GET", "/api/admin/projects/" + p.id + "/annotators");
      if (!list.length) { box.replaceChildren(el("p", { class: "hint" }, "No annotators yet: invite one above.")); return; }
      const kept = invites();
      const rows = list.map((a) => {
        const mine = kept[p.id + "/" + a.id];
        const link = !a.active ? "revoked" : mine ? el("input", { readOnly: true, value: mine.link, class: "invite-link", "data-name": a.name }) : el("span", { class: "hint" }, a.link_expires_at ? "made earlier (links are shown once)" : "none live");
        const again = el("button", { type: "button", class: "small new-link" }, "New link");
        again.addEventListener("click", async () => {
          say("");
          try { remember(p.id, await api(token, "POST", "/api/admin/projects/" + p.id + "/annotators/" + a.id + "/link", {})); await showAnnotators(p, box); say("New link for " + a.name + "."); }
          catch (err) { say(err.message, true); }
        });
        const stop = el("button", { type: "button", class: "small disable" }, "Disable");
        stop.addEventListener("click", async () => {
          say("");
          if (!window.confirm("Disable " + a.name + "? Their links and logins stop working (their labels are kept).")) return;
          try { await api(token, "POST", "/api/admin/projects/" + p.id + "/annotators/" + a.id + "/disable"); await showAnnotators(p, box); say(a.name + " is disabled; their links no longer work."); }
          catch (err) { say(err.message, true); }
        });
        const status = a.active ? "active" : "disabled";
        return el("tr", { "data-annotator": a.name },
          el("td", {}, a.name), el("td", {}, String(a.labels)), el("td", {}, status), el("td", {}, a.password ? "yes" : "no"),
          el("td", {}, link instanceof Node ? link : String(link)), el("td", {}, a.active ? again : "", a.active ? stop : ""));
      });
      box.replaceChildren(el("table", { class: "stats-table annotator-list" },
        el("thead", {}, el("tr", {}, ...["annotator", "labels", "status", "password", "invitation link", ""].map((h) => el("th", {}, h)))),
        el("tbody", {}, ...rows)));
    } catch (err) { say(err.message, true); }
  }

  async function showStats(p, box) {
    try { box.replaceChildren(alignlabStats.render(await api(token, "GET", "/api/admin/projects/" + p.id + "/stats"))); }
    catch (err) { say(err.message, true); }
  }

  $("new-project").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const kinds = [...document.querySelectorAll('input[name="kind"]:checked')].map((i) => i.value);
      const body = {
        name: $("np-name").value, kinds,
        aspects: parseAspects($("np-aspects").value),
        span_labels: $("np-span-labels").value.split(",").map((s) => s.trim()).filter(Boolean),
        per_task: Number($("np-per-task").value),
        instructions: $("np-instructions").value,
      };
      say("");
      await api(token, "POST", "/api/admin/projects", body);
      say("Created " + body.name + ".");
      $("new-project").reset();
      await refresh();
    } catch (err) { say(err.message, true); }
  });
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    token = $("token-input").value.trim();
    sessionStorage.setItem("alignlab-admin", token);
    start().catch((err) => say(err.message, true));
  });
  start().catch((err) => say(err.message, true));
})();
