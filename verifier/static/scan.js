// The camera scanner: frames go to POST /api/scan (decoded server-side with zxing-cpp);
// when a Shomei QR code is found, its text is posted to /verify for the result page.
(function () {
  "use strict";
  var section = document.getElementById("scan");
  if (!section) return;
  var video = document.getElementById("camera");
  var start = document.getElementById("start-camera");
  var stop = document.getElementById("stop-camera");
  var status = document.getElementById("scan-status");
  var form = document.getElementById("paste-form");
  var textarea = document.getElementById("presentation");
  var canvas = document.createElement("canvas");
  var stream = null, timer = null, busy = false;
  var INTERVAL = 300, MAX_SIDE = 1280;

  function say(text) { status.textContent = text || ""; }

  function halt() {
    if (timer) { clearInterval(timer); timer = null; }
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
    video.srcObject = null;
    start.hidden = false; stop.hidden = true;
  }

  function frame() {
    if (busy || !stream || video.readyState < 2 || !video.videoWidth) return;
    var scale = Math.min(1, MAX_SIDE / Math.max(video.videoWidth, video.videoHeight));
    canvas.width = Math.round(video.videoWidth * scale);
    canvas.height = Math.round(video.videoHeight * scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    busy = true;
    canvas.toBlob(function (blob) {
      if (!blob) { busy = false; return; }
      fetch(section.dataset.scanUrl, {
        method: "POST", body: blob, headers: { "Content-Type": "image/jpeg" },
        credentials: "same-origin", cache: "no-store"
      }).then(function (resp) {
        return resp.json().then(function (body) { return { ok: resp.ok, body: body }; });
      }).then(function (r) {
        if (r.ok && r.body.found) {
          halt();
          textarea.value = r.body.payload;
          form.submit();
          return;
        }
        if (!r.ok && r.body.error) {
          // A QR code that is not ours, or a failed frame: say so and keep scanning.
          var m = r.body.error.message;
          say(section.dataset.lang === "en" ? m.en : m.ja);
        }
      }).catch(function () { /* a dropped frame: the next one follows */ })
        .then(function () { busy = false; });
    }, "image/jpeg", 0.85);
  }

  start.addEventListener("click", function () {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      say(section.dataset.msgUnavailable); return;
    }
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (s) {
        stream = s;
        video.srcObject = s;
        return video.play();
      }).then(function () {
        start.hidden = true; stop.hidden = false;
        say(section.dataset.msgScanning);
        timer = setInterval(frame, INTERVAL);
      }).catch(function () { halt(); say(section.dataset.msgUnavailable); });
  });
  stop.addEventListener("click", function () { halt(); say(""); });
  window.addEventListener("pagehide", halt);
})();
