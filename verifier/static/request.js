// The request page: poll the request's state until the wallet has answered, then show
// the result page (a reload of either page shows the verdict while the request lives);
// stop when the request expires. Where the browser offers the W3C Digital Credentials
// API, a button hands it the same request (OpenID4VP Annex A) and posts its answer.
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

  // ---------------------------------------------------------------- Digital Credentials API
  var dcRequest = JSON.parse(section.dataset.dcApiRequest || "null");
  var dcButton = document.getElementById("dc-api-start");

  function dcApiAvailable() {
    if (typeof window.DigitalCredential === "undefined") return false;
    if (!navigator.credentials || typeof navigator.credentials.get !== "function") return false;
    var allows = window.DigitalCredential.userAgentAllowsProtocol;
    return typeof allows !== "function" || allows.call(window.DigitalCredential, dcRequest.protocol);
  }

  function askBrowser() {
    dcButton.disabled = true;
    return navigator.credentials
      .get({ mediation: "required", digital: { requests: [dcRequest] } })
      .then(function (credential) {
        if (!credential || !credential.data) throw new Error("no credential");
        var data = typeof credential.data === "string" ? JSON.parse(credential.data) : credential.data;
        return fetch(section.dataset.dcApiUrl, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ protocol: credential.protocol, data: data })
        });
      })
      .then(function () { poll(); })
      .catch(function () {
        status.textContent = section.dataset.msgDcFailed;
        dcButton.disabled = false;
      });
  }

  if (dcButton && dcRequest && dcApiAvailable()) {
    dcButton.hidden = false;
    dcButton.addEventListener("click", askBrowser);
  }
})();
