// lifeboat dashboard: live updates of a run page over server-sent events. The pages work
// without it; this only repaints what changed.
"use strict";
(function () {
  const page = document.querySelector("[data-live-run]");
  // A finished run (or a rejected or cancelled request) will not change: no stream.
  if (!page || !window.EventSource || page.getAttribute("data-finished") === "true") return;
  const runId = page.getAttribute("data-live-run");
  // Delays from a journal event to its repaint, kept for the latency benchmark.
  window.lifeboatDelays = [];
  const source = new EventSource("/ui/runs/" + encodeURIComponent(runId) + "/events");
  source.addEventListener("state", function (message) {
    const state = JSON.parse(message.data);
    for (const step of state.steps) {
      const node = document.getElementById("node-" + step.id);
      if (node) node.setAttribute("class", "node " + step.class);
      const row = document.querySelector('tr[data-step="' + CSS.escape(step.id) + '"]');
      if (row) {
        const cell = row.querySelector(".step-status");
        if (cell) cell.textContent = step.status;
        const attempts = row.querySelector(".step-attempts");
        if (attempts) attempts.textContent = String(step.attempts);
      }
    }
    const badge = document.getElementById("run-status");
    if (badge) {
      badge.textContent = state.status;
      badge.className = "badge " + state.status;
    }
    page.setAttribute("data-seq", String(state.seq));
    if (state.at_ms) {
      window.lifeboatDelays.push(Date.now() - state.at_ms);
      if (window.lifeboatDelays.length > 10000) window.lifeboatDelays.shift();
    }
    if (state.finished) {
      // The finished run's report (objectives, timeline, evidence) is rendered by the server.
      source.close();
      window.setTimeout(function () { window.location.reload(); }, 300);
    }
    // A step began or stopped waiting for an approval: the server renders its buttons.
    const awaiting = state.steps.filter(function (s) { return s.awaiting_approval; }).map(function (s) { return s.id; }).join(",");
    if (state.started && !state.finished && awaiting !== (page.getAttribute("data-awaiting") || "")) {
      source.close();
      window.location.reload();
      return;
    }
    if (state.started && page.getAttribute("data-started") === "false") {
      source.close();
      window.location.reload();
    }
  });
})();
