// The admin page's statistics view: /api/admin/projects/{id}/stats drawn as tables and bar charts.
// Every value is put on the page with textContent; bar widths are set through the CSSOM (the CSP forbids
// inline style attributes, not element.style).
"use strict";

const alignlabStats = (() => {
  const { el } = alignlab;
  const fmt = (v, digits) => (v === null || v === undefined ? "–" : typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(digits === undefined ? 2 : digits)) : String(v));

  // Landis & Koch (1977): the usual words for a kappa or alpha.
  function strength(v) {
    if (v === null || v === undefined) return "not enough shared items yet";
    if (v < 0) return "worse than chance";
    if (v <= 0.2) return "slight";
    if (v <= 0.4) return "fair";
    if (v <= 0.6) return "moderate";
    if (v <= 0.8) return "substantial";
    return "almost perfect";
  }

  function table(header, rows, cls) {
    return el("table", { class: "stats-table" + (cls ? " " + cls : "") },
      el("thead", {}, el("tr", {}, ...header.map((h) => el("th", {}, h)))),
      el("tbody", {}, ...rows.map((row) => el("tr", {}, ...row.map((c) => el("td", {}, c instanceof Node ? c : fmt(c)))))));
  }

  // One horizontal bar: value in [0, max]; an optional marker (e.g. 0.5 for "no position bias").
  function bar(value, max, marker) {
    const track = el("span", { class: "bar" }, el("span", { class: "bar-fill" }));
    const share = value === null || value === undefined || !max ? 0 : Math.max(0, Math.min(1, value / max));
    track.firstChild.style.width = (100 * share).toFixed(1) + "%";
    if (marker !== undefined) {
      const line = el("span", { class: "bar-marker" });
      line.style.left = (100 * marker / max).toFixed(1) + "%";
      track.append(line);
    }
    return el("span", { class: "bar-cell" }, track, el("span", { class: "bar-value" }, fmt(value)));
  }

  function annotators(list) {
    const most = Math.max(1, ...list.map((a) => a.labels));
    return [
      el("h4", {}, "Annotators"),
      table(["annotator", "labels", "median seconds per label", "agreement with the others' majority", "items compared"],
        list.map((a) => [a.name, bar(a.labels, most), a.median_seconds, a.agreement_with_majority === null ? "–" : bar(a.agreement_with_majority, 1), a.compared_with_majority]),
        "annotator-stats"),
    ];
  }

  function agreement(ag) {
    const rows = [];
    if (ag.pairwise) {
      rows.push(["pairwise: Fleiss' kappa", ag.pairwise.fleiss_kappa, strength(ag.pairwise.fleiss_kappa), ag.pairwise.items_with_2_or_more_votes + " items with 2+ votes"]);
      rows.push(["pairwise: mean Cohen's kappa", ag.pairwise.mean_cohen_kappa, strength(ag.pairwise.mean_cohen_kappa), ag.pairwise.cohen_kappa_pairs.length + " annotator pairs"]);
    }
    if (ag.ranking) rows.push(["ranking: Krippendorff's alpha (ordinal)", ag.ranking.krippendorff_alpha_ordinal, strength(ag.ranking.krippendorff_alpha_ordinal), ""]);
    for (const [aspect, a] of Object.entries(ag.ratings || {})) {
      rows.push([aspect + ": Krippendorff's alpha (interval)", a.krippendorff_alpha_interval, strength(a.krippendorff_alpha_interval), a.units_with_2_or_more + " rated twice or more"]);
      rows.push([aspect + ": Krippendorff's alpha (ordinal)", a.krippendorff_alpha_ordinal, strength(a.krippendorff_alpha_ordinal), ""]);
    }
    if (!rows.length) return [];
    const out = [el("h4", {}, "Agreement"), table(["measure", "value", "reading (Landis & Koch)", "based on"], rows, "agreement")];
    const pairs = ag.pairwise ? ag.pairwise.cohen_kappa_pairs : [];
    if (pairs.length) out.push(table(["annotators", "shared items", "Cohen's kappa"], pairs.map((p) => [p.a + " · " + p.b, p.items, p.kappa]), "kappa-pairs"));
    return out;
  }

  function bias(pb) {
    const out = [];
    if (pb.pairwise) {
      const rows = [["everyone", pb.pairwise]].concat(Object.entries(pb.pairwise.per_annotator || {}));
      out.push(el("h4", {}, "Position bias: how often the response shown first wins (0.5 = none)"),
        table(["who", "decisive votes", "shown first won", "p-value (two-sided binomial)"],
          rows.map(([who, b]) => [who, b.decisive_votes, bar(b.rate, 1, 0.5), b.p_value]), "position-bias"));
    }
    if (pb.ranking) {
      out.push(el("p", { class: "hint" }, "Rankings: the response shown first was ranked best " + pb.ranking.shown_first_ranked_best + " times in " + pb.ranking.votes + " (" + fmt(pb.ranking.expected_without_bias, 1) + " expected without bias)."));
    }
    const ratings = Object.entries(pb.ratings || {});
    if (ratings.length) {
      out.push(table(["aspect", "mean rating, shown first", "mean rating, shown later"], ratings.map(([aspect, r]) => [aspect, r.mean_shown_first, r.mean_shown_later]), "rating-bias"));
    }
    return out;
  }

  function render(stats) {
    const p = stats.progress;
    return el("div", { class: "stats" },
      el("p", {}, p.labels + " of " + p.target_labels + " labels, " + p.complete_tasks + " of " + p.tasks + " tasks complete."),
      ...annotators(stats.annotators), ...agreement(stats.agreement), ...bias(stats.position_bias));
  }

  return { render, strength };
})();
