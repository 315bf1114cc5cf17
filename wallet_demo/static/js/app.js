// The wallet's page: views (証明書 list, details, 受け取る), preferences, the camera,
// the service worker, and keeping statuses and anchor evidence up to date.
import { initPreferences, lang, setLang, setLarge, t } from "./i18n.js";
import { renderDetail, renderList, refreshRecord } from "./list.js";
import { ReceiveError, describeOffer, issuerMetadata, receiveCredential, resolveOffer } from "./receive.js";
import { deleteCredential, getCredential, listCredentials } from "./store.js";
import { loadTypes, title } from "./types.js";

const $ = (id) => document.getElementById(id);
const SCAN_INTERVAL = 300;
const EVIDENCE_POLL = 4000;
const state = {
  view: "list",
  detailId: null,
  offer: null,
  about: null, // the issuer's names and the type's titles, once its metadata is read
  messages: { progress: null, error: null }, // [ja, en] shown on the receive view
  camera: null,
  poll: null,
};

function show(el, visible) {
  el.hidden = !visible;
}

function showView(name) {
  state.view = name;
  for (const view of ["list", "detail", "receive"]) show($(`${view}-view`), view === name);
  $("tab-list").toggleAttribute("aria-current", name !== "receive");
  $("tab-receive").toggleAttribute("aria-current", name === "receive");
  if (name === "list") $("tab-list").setAttribute("aria-current", "page");
  if (name === "receive") $("tab-receive").setAttribute("aria-current", "page");
  if (name !== "receive") stopCamera();
  window.scrollTo(0, 0);
}

// ------------------------------------------------------------------ list and details
async function showList() {
  showView("list");
  await drawList();
  refreshAll();
}

async function drawList() {
  const records = await listCredentials();
  show($("list-empty"), records.length === 0);
  renderList($("cert-list"), records, showDetail);
  return records;
}

async function showDetail(id) {
  const record = await getCredential(id);
  if (!record) return showList();
  state.detailId = id;
  show($("delete-confirm"), false);
  renderDetail(record, { title: $("detail-title"), summary: $("detail-summary"), claims: $("detail-claims") });
  showView("detail");
}

// Whether the wallet's server answers: the offline note follows what the network does,
// not only navigator.onLine (a page served by the service worker offline may still say
// it is online). /api/ is never answered from the service worker's cache.
async function reachable() {
  let up = navigator.onLine;
  if (up) {
    try {
      up = (await fetch("/api/ping", { cache: "no-store" })).ok;
    } catch {
      up = false;
    }
  }
  show($("offline-note"), !up);
  return up;
}

async function refreshAll() {
  if (!(await reachable())) return;
  const records = await listCredentials();
  await Promise.all(records.map((r) => refreshRecord(r).catch(() => r)));
  if (state.view === "list") await drawList();
  if (state.view === "detail" && state.detailId) {
    const record = await getCredential(state.detailId);
    if (record) {
      renderDetail(record, { title: $("detail-title"), summary: $("detail-summary"), claims: $("detail-claims") });
    }
  }
  schedulePoll(records);
}

function schedulePoll(records) {
  clearTimeout(state.poll);
  state.poll = null;
  // Until every certificate's batch is on chain, ask again every few seconds.
  if (records.some((r) => !r.evidence)) {
    state.poll = setTimeout(async () => {
      state.poll = null;
      if (document.visibilityState === "visible") await refreshAll();
      else schedulePoll(await listCredentials());
    }, EVIDENCE_POLL);
  }
}

// ------------------------------------------------------------------ receiving
function drawMessage(kind) {
  const box = $(`receive-${kind}`);
  const pair = state.messages[kind];
  box.textContent = pair ? t(...pair) : "";
  show(box, Boolean(pair));
}

/** Show `pair` ([ja, en], or null to clear) as the progress line or the error. */
function receiveMessage(pair, isError) {
  state.messages[isError ? "error" : "progress"] = pair;
  if (isError) state.messages.progress = null;
  drawMessage("progress");
  drawMessage("error");
}

function drawOffer() {
  const offer = state.offer;
  if (!offer) return;
  const about = state.about || { issuerNames: {}, typeNames: {} };
  $("offer-issuer").textContent = about.issuerNames[lang()] || about.issuerName || offer.credential_issuer;
  $("offer-type").textContent = about.typeNames[lang()] || title(offer.credential_configuration_ids[0]);
}

function resetReceive() {
  state.offer = null;
  state.about = null;
  $("tx-code").value = "";
  $("offer-text").value = "";
  show($("offer-step"), true);
  show($("code-step"), false);
  receiveMessage(null, false);
  receiveMessage(null, true);
}

async function takeOffer(text) {
  receiveMessage(null, true);
  let offer;
  try {
    offer = await resolveOffer(text);
  } catch (e) {
    receiveMessage(e instanceof ReceiveError ? [e.ja, e.en] : [String(e), String(e)], true);
    return;
  }
  stopCamera();
  showView("receive");
  state.offer = offer;
  state.about = null;
  await loadTypes();
  drawOffer();
  show($("offer-step"), false);
  show($("code-step"), true);
  $("tx-code").focus();
  try {
    const about = describeOffer(offer, await issuerMetadata(offer.credential_issuer));
    if (state.offer === offer) {
      state.about = about;
      drawOffer();
    }
  } catch {
    // shown by the receive step if the issuer stays unreachable
  }
}

const STEPS = {
  metadata: ["発行元に接続しています…", "Contacting the issuer…"],
  token: ["確認番号を確かめています…", "Checking the code…"],
  key: ["この端末の鍵を作っています…", "Making this phone's key…"],
  credential: ["証明書を受け取っています…", "Receiving the certificate…"],
  signature: ["発行元の署名を確かめています…", "Checking the issuer's signature…"],
  type: ["証明書の種類の情報を読み込んでいます…", "Reading the certificate type's labels…"],
  saved: ["保存しました", "Saved"],
};

function normaliseCode(text) {
  return text.replace(/[０-９]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0)).replace(/\D/g, "");
}

async function submitCode(event) {
  event.preventDefault();
  if (!state.offer) return;
  const code = normaliseCode($("tx-code").value);
  const length = (state.offer.txCode && state.offer.txCode.length) || 6;
  if (code.length !== length) {
    receiveMessage([`確認番号は${length}桁の数字です`, `The code has ${length} digits`], true);
    return;
  }
  receiveMessage(null, true);
  $("receive-submit").disabled = true;
  try {
    const record = await receiveCredential(state.offer, code, {
      onStep: (step) => receiveMessage(STEPS[step], false),
    });
    resetReceive();
    await refreshRecord(record, { force: true }).catch(() => record);
    await showList();
  } catch (e) {
    const known = e instanceof ReceiveError;
    receiveMessage(known ? [e.ja, e.en] : ["受け取れませんでした。もう一度お試しください", "Could not receive it; please try again"], true);
    if (known && e.kind === "wrong_code") {
      $("tx-code").select();
    } else if (known && ["used", "expired", "not_valid", "offer"].includes(e.kind)) {
      show($("code-step"), false);
      show($("offer-step"), true);
      $("offer-text").value = "";
      state.offer = null;
    }
    if (!known) console.error(e);
  } finally {
    $("receive-submit").disabled = false;
  }
}

// ------------------------------------------------------------------ camera
async function startCamera() {
  receiveMessage(null, true);
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    receiveMessage(["この端末ではカメラを使えません。リンクを貼り付けてください", "No camera here: paste the link instead"], true);
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  } catch {
    receiveMessage(["カメラを使えません。カメラの利用を許可するか、リンクを貼り付けてください", "Cannot use the camera: allow it, or paste the link"], true);
    return;
  }
  const video = $("camera-video");
  video.srcObject = stream;
  await video.play().catch(() => {});
  show($("camera-box"), true);
  show($("camera-start"), false);
  const canvas = document.createElement("canvas");
  const camera = { stream, timer: null, busy: false };
  state.camera = camera;
  camera.timer = setInterval(() => scanFrame(camera, video, canvas), SCAN_INTERVAL);
}

async function scanFrame(camera, video, canvas) {
  if (camera.busy || !video.videoWidth || state.camera !== camera) return;
  camera.busy = true;
  try {
    const scale = Math.min(1, 960 / video.videoWidth);
    canvas.width = Math.round(video.videoWidth * scale);
    canvas.height = Math.round(video.videoHeight * scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
    if (!blob) return;
    const response = await fetch("/api/scan", { method: "POST", headers: { "Content-Type": "image/jpeg" }, body: blob });
    const found = await response.json();
    if (state.camera === camera && found.found && found.text.startsWith("openid-credential-offer:")) {
      await takeOffer(found.text);
    }
  } catch {
    // a lost frame: the next one follows
  } finally {
    camera.busy = false;
  }
}

function stopCamera() {
  const camera = state.camera;
  state.camera = null;
  if (camera) {
    clearInterval(camera.timer);
    for (const track of camera.stream.getTracks()) track.stop();
  }
  $("camera-video").srcObject = null;
  show($("camera-box"), false);
  show($("camera-start"), true);
}

// ------------------------------------------------------------------ start
function offerInUrl() {
  const query = new URLSearchParams(location.search);
  for (const name of ["credential_offer", "credential_offer_uri"]) {
    if (query.has(name)) return `?${name}=${encodeURIComponent(query.get(name))}`;
  }
  const hash = location.hash.replace(/^#/, "");
  if (hash.startsWith("offer=")) return decodeURIComponent(hash.slice("offer=".length));
  return null;
}

// An OpenID4VP request opening the wallet: /?request=<the openid4vp:// link, URL-encoded>,
// or the request's own parameters on the wallet's URL (/?client_id=…&request_uri=…).
function requestInUrl() {
  const query = new URLSearchParams(location.search);
  if (query.has("request") && !query.has("client_id")) return query.get("request");
  if (query.has("client_id") && (query.has("request_uri") || query.has("response_type") || query.has("request"))) {
    return `openid4vp://?${query.toString()}`;
  }
  return null;
}

function bind() {
  $("toggle-large").addEventListener("click", () =>
    setLarge($("toggle-large").getAttribute("aria-pressed") !== "true"),
  );
  $("toggle-lang").addEventListener("click", () => setLang(lang() === "en" ? "ja" : "en"));
  window.addEventListener("shomei:lang", async () => {
    drawOffer();
    drawMessage("progress");
    drawMessage("error");
    if (state.view === "list") await drawList();
    if (state.view === "detail" && state.detailId) await showDetail(state.detailId);
  });
  $("request-open").addEventListener("click", () => window.dispatchEvent(new CustomEvent("shomei:request", { detail: {} })));
  $("tab-list").addEventListener("click", () => showList());
  $("tab-receive").addEventListener("click", () => {
    resetReceive();
    showView("receive");
  });
  $("detail-back").addEventListener("click", () => showList());
  $("detail-present").addEventListener("click", () => {
    if (state.detailId) window.dispatchEvent(new CustomEvent("shomei:present", { detail: { id: state.detailId } }));
  });
  $("detail-delete").addEventListener("click", () => {
    show($("delete-confirm"), true);
    $("delete-no").focus();
  });
  $("delete-no").addEventListener("click", () => show($("delete-confirm"), false));
  $("delete-yes").addEventListener("click", async () => {
    if (state.detailId) await deleteCredential(state.detailId);
    state.detailId = null;
    await showList();
  });
  $("camera-start").addEventListener("click", startCamera);
  $("camera-stop").addEventListener("click", stopCamera);
  $("offer-paste").addEventListener("click", () => takeOffer($("offer-text").value));
  $("code-step").addEventListener("submit", submitCode);
  $("receive-cancel").addEventListener("click", () => {
    resetReceive();
    showList();
  });
  const online = () => {
    show($("offline-note"), !navigator.onLine);
    if (navigator.onLine) refreshAll();
  };
  window.addEventListener("hashchange", () => {
    const offer = offerInUrl();
    if (offer) {
      history.replaceState(null, "", location.pathname + location.search);
      takeOffer(offer);
    }
  });
  window.addEventListener("online", online);
  window.addEventListener("offline", online);
  reachable();
}

async function start() {
  initPreferences();
  bind();
  await loadTypes();
  const supported = window.isSecureContext && window.crypto && crypto.subtle && window.indexedDB;
  show($("unsupported"), !supported);
  if ("serviceWorker" in navigator && window.isSecureContext) {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {});
  }
  const request = requestInUrl();
  if (request) {
    const keep = new URLSearchParams(location.search).get("lang");
    history.replaceState(null, "", keep ? `/?lang=${keep}` : "/");
    await showList();
    window.dispatchEvent(new CustomEvent("shomei:request", { detail: { text: request } }));
    return;
  }
  const offer = offerInUrl();
  if (offer) {
    // The pre-authorized code should not stay in the address bar or the history.
    const keep = new URLSearchParams(location.search).get("lang");
    history.replaceState(null, "", keep ? `/?lang=${keep}` : "/");
    await drawList();
    await takeOffer(offer);
    return;
  }
  await showList();
}

start();
