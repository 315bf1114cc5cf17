// The request page: poll the request's state until the wallet has answered, then show
// the result page (its result is handed out once); stop when the request expires.
(function () {
  "use strict";
  var section = document.getElementById("request");
  if (!section) return;
  var status = document.getElementById("request-status");
  var INTERVAL = 1000;
  var timer = setInterval(poll, INTERVAL);
  var busy = false;

  function poll() {
    if (busy) return;
    busy = true;
    fetch(section.dataset.statusUrl, { cache: "no-store", credentials: "same-origin" })
      .then(function (resp) { return resp.json(); })
      .then(function (body) {
        if (body.state === "answered") {
          clearInterval(timer);
          status.textContent = section.dataset.msgAnswered;
          window.location.assign(section.dataset.resultUrl);
        } else if (body.state === "expired" || body.error) {
          clearInterval(timer);
          status.textContent = section.dataset.msgExpired;
        }
      })
      .catch(function () { /* a dropped poll: the next one follows */ })
      .then(function () { busy = false; });
  }
  window.addEventListener("pagehide", function () { clearInterval(timer); });
})();
