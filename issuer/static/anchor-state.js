// The certificate page: ask for the anchoring state until the batch is on chain, then
// show block, time and transaction in place (no reload: a form being filled stays).
(function () {
  "use strict";
  var cell = document.getElementById("anchor");
  if (!cell || cell.dataset.state === "anchored") return;
  var delay = 1500;

  function show(state) {
    cell.dataset.state = state.state;
    cell.textContent = "";
    var label = document.createElement(state.state === "anchored" ? "strong" : "span");
    label.textContent = state.label;
    cell.appendChild(label);
    if (state.state !== "anchored") return;
    cell.appendChild(document.createTextNode(" — " + state.block_label + " " + state.block + ", " + state.time + ", "));
    var tx = document.createElement("code");
    tx.className = "tx";
    tx.textContent = state.tx;
    cell.appendChild(tx);
  }

  function poll() {
    fetch(cell.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (state) {
        if (state) show(state);
        if (!state || state.state !== "anchored") {
          delay = Math.min(delay * 1.2, 10000);
          window.setTimeout(poll, delay);
        }
      })
      .catch(function () { window.setTimeout(poll, 10000); });
  }
  window.setTimeout(poll, delay);
})();
