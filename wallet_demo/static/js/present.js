// Presenting a certificate: the resident picks the items to show, sees exactly what
// the company will see, and shows a QR code (embedded, or a link to a sealed copy on
// the wallet's relay when the presentation is too large), or answers a verifier's
// request (nonce and audience signed by the holder key) by sending it directly.
import { getCredential } from "./store.js";
import { present } from "./sdjwt.js";
import { encode as qrEncode, svg as qrSvg } from "./qrcode.js";

const LABELS = {
  juminhyo: {
    family_name: "氏", given_name: "名", family_name_kana: "氏（フリガナ）",
    given_name_kana: "名（フリガナ）", birthdate: "生年月日", sex: "性別", address: "住所",
    head_of_household: "世帯主", relationship_to_head: "続柄",
    resident_since: "住民となった年月日", address_since: "住所を定めた年月日",
    notified_on: "届出日", previous_address: "前住所", registered_domicile: "本籍",
    domicile_head: "筆頭者",
  },
  partnership: {
    holder_family_name: "本人の氏", holder_given_name: "本人の名",
    holder_birthdate: "本人の生年月日", partner_family_name: "パートナーの氏",
    partner_given_name: "パートナーの名", partner_birthdate: "パートナーの生年月日",
    declared_on: "宣誓日", certificate_number: "受領証番号", address: "住所",
    children: "子（ファミリーシップ）", recognized_by: "連携自治体",
  },
};
const TITLES = { juminhyo: "住民票の写し", partnership: "パートナーシップ宣誓書受領証" };
const PRESETS = {
  juminhyo: [
    { label: "住所確認", names: ["family_name", "given_name", "address"] },
    { label: "年齢確認", names: ["birthdate"] },
  ],
  partnership: [
    {
      label: "関係の確認",
      names: ["holder_family_name", "holder_given_name", "partner_family_name",
        "partner_given_name", "declared_on"],
    },
  ],
};
// Registered claims and SD-JWT machinery: never shown to the resident as "items".
const TECHNICAL = new Set(["iss", "iat", "exp", "nbf", "vct", "cnf", "status", "sub",
  "_sd", "_sd_alg", "vct#integrity"]);
const REQUEST_PREFIX = "shomei-request:";
const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

// Test hook: ?present-link=1 forces link mode, so tests reach it with any credential.
const FORCE_LINK = new URLSearchParams(location.search).get("present-link") === "1";

const section = document.getElementById("present");
let hiddenViews = [];
let current = null; // {record, checks: Map(name -> checkbox)}
let camera = null;

// ------------------------------------------------------------------ helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== false && v !== null && v !== undefined) node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function label(record, name) {
  const fromRecord = (record.labels || {})[name];
  return fromRecord || (LABELS[record.docType] || {})[name] || name;
}

function formatDate(text) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  return m ? `${Number(m[1])}年${Number(m[2])}月${Number(m[3])}日` : text;
}

function formatValue(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return formatDate(value);
  if (Array.isArray(value)) return value.map(formatValue).join("、");
  if (typeof value === "object") return Object.values(value).map(formatValue).join(" ");
  return String(value);
}

function b32(bytes) {
  let bits = 0, value = 0, out = "";
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31];
  return out;
}

function b64uDecodeBytes(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function b64uDecodeText(text) {
  return new TextDecoder("utf-8", { fatal: true }).decode(b64uDecodeBytes(text));
}

async function postJson(url, body) {
  const resp = await fetch(url, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body), cache: "no-store", credentials: "omit",
  });
  let doc = null;
  try { doc = await resp.json(); } catch { doc = null; }
  return { ok: resp.ok, status: resp.status, doc };
}

function errorText(doc, fallback) {
  const e = doc && doc.error;
  if (!e) return fallback;
  if (typeof e === "string") return (doc.message || fallback);
  const m = e.message;
  return typeof m === "string" ? m : (m && m.ja) || fallback;
}

// ------------------------------------------------------------------ views

function open() {
  hiddenViews = [...document.querySelectorAll("main > .view")].filter((v) => !v.hidden);
  hiddenViews.forEach((v) => { v.hidden = true; });
  section.hidden = false;
  window.scrollTo(0, 0);
}

function close() {
  stopCamera();
  section.replaceChildren();
  section.hidden = true;
  hiddenViews.forEach((v) => { v.hidden = false; });
  hiddenViews = [];
  current = null;
}

function selectedNames() {
  return [...current.checks].filter(([, box]) => box.checked).map(([name]) => name);
}

function plainItems(record) {
  return Object.entries(record.plain || {}).filter(([k]) => !TECHNICAL.has(k));
}

function renderPreview(box) {
  const record = current.record;
  const names = selectedNames();
  const dl = el("dl", { class: "present-preview-list" });
  for (const c of record.claims.filter((c) => names.includes(c.name))) {
    dl.append(el("dt", { text: label(record, c.name) }), el("dd", { text: formatValue(c.value) }));
  }
  for (const [k, v] of plainItems(record)) {
    dl.append(el("dt", { text: label(record, k) }), el("dd", { text: formatValue(v) }));
  }
  box.replaceChildren(
    el("h3", { text: "相手に見える内容" }),
    names.length ? dl : el("p", { class: "error", text: "項目が選ばれていません" }),
    el("p", { class: "note", text: "発行元（市）と有効期限、取り消されていないかどうかも相手に伝わります。これ以外の項目は相手に見えません。" }),
  );
  current.showButton.disabled = names.length === 0;
}

function renderChooser(record) {
  const preview = el("div", { class: "present-preview", id: "present-preview", "aria-live": "polite" });
  current.checks = new Map();
  const list = el("div", { class: "present-claims", role: "group", "aria-label": "見せる項目" });
  for (const c of record.claims) {
    const box = el("input", { type: "checkbox", name: c.name, value: c.name, id: `present-claim-${c.name}` });
    box.addEventListener("change", () => renderPreview(preview));
    current.checks.set(c.name, box);
    list.append(el("label", { class: "present-claim", for: box.id }, box,
      el("span", { class: "present-claim-label", text: label(record, c.name) }),
      el("span", { class: "present-claim-value", text: formatValue(c.value) })));
  }
  const presets = el("div", { class: "present-presets" });
  for (const p of PRESETS[record.docType] || []) {
    presets.append(el("button", {
      type: "button", class: "button", "data-preset": p.label, text: p.label,
      onclick: () => {
        current.checks.forEach((box, name) => { box.checked = p.names.includes(name); });
        renderPreview(preview);
      },
    }));
  }
  current.showButton = el("button", {
    type: "button", id: "present-show", class: "button primary", text: "QRコードを表示", disabled: true,
    onclick: () => showQr().catch((e) => fail(e)),
  });
  section.replaceChildren(
    el("button", { type: "button", id: "present-back", class: "link-button", text: "← 戻る", onclick: close }),
    el("h2", { id: "present-title", text: `${TITLES[record.docType] || record.issuerName || "証明書"}を提示する` }),
    el("p", { text: "相手に見せる項目を選んでください。選ばなかった項目は相手に見えません。" }),
    el("h3", { text: "よく使う組み合わせ" }), presets,
    el("h3", { text: "項目" }), list,
    preview,
    el("div", { class: "actions" }, current.showButton,
      el("button", { type: "button", id: "present-answer", class: "button", text: "依頼に答える", onclick: answerRequest })),
    el("p", { id: "present-status", class: "note", role: "status", "aria-live": "polite" }),
    el("p", { id: "present-error", class: "error", role: "alert", hidden: true }),
  );
  renderPreview(preview);
}

function status(text) {
  const node = document.getElementById("present-status");
  if (node) node.textContent = text || "";
}

function fail(err) {
  const node = document.getElementById("present-error");
  if (!node) return;
  node.textContent = typeof err === "string" ? err : `提示できませんでした（${err && err.message ? err.message : err}）`;
  node.hidden = false;
  status("");
}

// ------------------------------------------------------------------ QR code

async function sealAndUpload(containerB64u) {
  const container = b64uDecodeBytes(containerB64u);
  const id = crypto.getRandomValues(new Uint8Array(16));
  const key = crypto.getRandomValues(new Uint8Array(16));
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const aes = await crypto.subtle.importKey("raw", key, { name: "AES-GCM" }, false, ["encrypt"]);
  const sealed = new Uint8Array(await crypto.subtle.encrypt(
    { name: "AES-GCM", iv: nonce, additionalData: id, tagLength: 128 }, aes, container));
  const blob = new Uint8Array(nonce.length + sealed.length);
  blob.set(nonce, 0);
  blob.set(sealed, nonce.length);
  const base = new URL("/relay", location.href);
  const resp = await fetch(`${base.href}/${b32(id)}`, {
    method: "PUT", body: blob, headers: { "Content-Type": "application/octet-stream" },
    cache: "no-store",
  });
  if (!resp.ok) throw new Error(`中継サーバーに保存できません（${resp.status}）`);
  // As LinkRef.to_url(): scheme and host upper-case, so most of the URL is alphanumeric.
  const head = `${base.protocol.slice(0, -1).toUpperCase()}://${base.host.toUpperCase()}`;
  return `${head}${base.pathname}/${b32(id)}#${b32(key)}`;
}

async function showQr() {
  const record = current.record;
  const names = selectedNames();
  status("QRコードを作っています…");
  document.getElementById("present-error").hidden = true;
  const presentation = await present(record, names, null);
  const { ok, doc } = await postJson("/api/encode", { presentation, evidence: record.evidence || null });
  if (!ok || !doc) throw new Error(errorText(doc, "QRコードを作れません"));
  let text, mode;
  if (doc.mode === "embedded" && !FORCE_LINK) {
    text = doc.payload;
    mode = "embedded";
  } else {
    const container = doc.mode === "too_large" ? doc.container : await containerFor(presentation, record);
    text = await sealAndUpload(container);
    mode = "link";
  }
  renderQr(record, names, text, mode);
}

// Only for the link-mode test hook: the encoder answered "embedded", so ask it again
// with the container that the embedded payload holds.
async function containerFor(presentation, record) {
  const { doc } = await postJson("/api/encode?container=1", { presentation, evidence: record.evidence || null });
  if (doc && doc.container) return doc.container;
  throw new Error("中継用のデータを作れません");
}

function renderQr(record, names, text, mode) {
  const qr = qrEncode(text);
  const picture = qrSvg(qr, { border: 4, scale: Math.max(3, Math.floor(Math.min(window.innerWidth - 32, 640) / (qr.size + 8))) });
  picture.setAttribute("aria-label", "提示用QRコード");
  const shown = el("ul", { class: "present-shown" },
    ...record.claims.filter((c) => names.includes(c.name)).map((c) =>
      el("li", { text: `${label(record, c.name)}: ${formatValue(c.value)}` })));
  section.replaceChildren(
    el("h2", { text: "相手にこのQRコードを読み取ってもらってください" }),
    el("div", { id: "present-qr", class: "present-qr", "data-mode": mode, "data-version": String(qr.version) }, picture),
    el("p", { class: "note", text: mode === "link"
      ? "提示データは暗号化して中継サーバーに10分間だけ置かれます。読み取られると消えます。"
      : "QRコードの中に提示データが入っています。" }),
    el("h3", { text: "このQRコードに入っている項目" }), shown,
    copyButton(text),
    el("button", { type: "button", id: "present-close", class: "button primary", text: "閉じる", onclick: close }),
  );
  window.scrollTo(0, 0);
}

// For a company checking on the same computer (or a chat, an e-mail): the QR code's text,
// which the verifier takes pasted as well as scanned.
function copyButton(text) {
  const note = el("p", { class: "note", id: "present-copied", "aria-live": "polite" });
  const button = el("button", {
    type: "button", id: "present-copy", class: "button", text: "QRコードの内容をテキストでコピー",
    onclick: () => {
      const done = () => { note.textContent = "コピーしました。確認サービスの「貼り付け」に貼り付けられます。"; };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(done, () => { note.textContent = text; });
      } else {
        note.textContent = text;
      }
    },
  });
  button.dataset.text = text;
  return el("div", { class: "present-copy" }, button, note);
}

// ------------------------------------------------------------------ answering a request

function parseRequest(text) {
  const trimmed = text.trim();
  if (!trimmed.startsWith(REQUEST_PREFIX)) throw new Error("確認サービスの依頼ではありません");
  const req = JSON.parse(b64uDecodeText(trimmed.slice(REQUEST_PREFIX.length)));
  const uri = new URL(req.response_uri);
  if (!["http:", "https:"].includes(uri.protocol) || typeof req.nonce !== "string" ||
      typeof req.client_id !== "string") {
    throw new Error("依頼の内容が不正です");
  }
  const claims = Array.isArray(req.claims) ? req.claims.filter((c) => typeof c === "string") : [];
  return { responseUri: uri.href, nonce: req.nonce, clientId: req.client_id, claims };
}

function stopCamera() {
  if (!camera) return;
  clearInterval(camera.timer);
  camera.stream.getTracks().forEach((t) => t.stop());
  camera = null;
}

async function startCamera(video, onText) {
  const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  video.srcObject = stream;
  await video.play();
  const canvas = document.createElement("canvas");
  let busy = false;
  camera = { stream, timer: setInterval(() => {
    if (busy || !video.videoWidth) return;
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    busy = true;
    canvas.toBlob(async (blob) => {
      try {
        const resp = await fetch("/api/scan", { method: "POST", body: blob, headers: { "Content-Type": "image/jpeg" } });
        const doc = await resp.json();
        if (doc.found && doc.text.startsWith(REQUEST_PREFIX)) { stopCamera(); onText(doc.text); }
      } catch { /* a dropped frame: the next one follows */ }
      busy = false;
    }, "image/jpeg", 0.85);
  }, 300) };
}

function answerRequest() {
  const record = current.record;
  const video = el("video", { id: "request-video", playsinline: true, muted: true });
  const textarea = el("textarea", { id: "request-text", rows: "3", autocomplete: "off", spellcheck: "false" });
  const error = el("p", { id: "request-error", class: "error", role: "alert", hidden: true });
  const accept = (text) => {
    try {
      confirmRequest(record, parseRequest(text));
    } catch (e) {
      error.textContent = `依頼を読み取れません（${e.message}）`;
      error.hidden = false;
    }
  };
  section.replaceChildren(
    el("button", { type: "button", class: "link-button", text: "← 戻る", onclick: () => { stopCamera(); renderChooser(record); } }),
    el("h2", { text: "確認サービスの依頼に答える" }),
    el("p", { text: "相手の画面に表示された「提示の依頼」のQRコードを読み取ってください。" }),
    el("button", { type: "button", id: "request-camera", class: "button primary", text: "カメラで読み取る",
      onclick: () => startCamera(video, accept).catch(() => {
        error.textContent = "カメラを使えません。依頼の文字列を貼り付けてください。";
        error.hidden = false;
      }) }),
    el("div", { class: "camera" }, video),
    el("label", { for: "request-text", text: "依頼の文字列（shomei-request:…）を貼り付ける" }), textarea,
    el("button", { type: "button", id: "request-read", class: "button", text: "読み込む", onclick: () => accept(textarea.value) }),
    error,
  );
}

function confirmRequest(record, req) {
  stopCamera();
  const have = new Set(record.claims.map((c) => c.name));
  const asked = req.claims.filter((n) => have.has(n));
  const missing = req.claims.filter((n) => !have.has(n));
  const checks = new Map();
  const list = el("div", { class: "present-claims" });
  for (const c of record.claims) {
    const box = el("input", { type: "checkbox", id: `answer-claim-${c.name}`, value: c.name });
    box.checked = asked.includes(c.name);
    checks.set(c.name, box);
    list.append(el("label", { class: "present-claim", for: box.id }, box,
      el("span", { class: "present-claim-label", text: label(record, c.name) }),
      el("span", { class: "present-claim-value", text: formatValue(c.value) })));
  }
  const result = el("p", { id: "answer-status", role: "status", "aria-live": "polite" });
  const send = el("button", {
    type: "button", id: "answer-send", class: "button primary", text: "この内容で送信する",
    onclick: async () => {
      const names = [...checks].filter(([, b]) => b.checked).map(([n]) => n);
      if (!names.length) { result.textContent = "項目を選んでください"; return; }
      send.disabled = true;
      result.dataset.state = "sending";
      result.textContent = "送信しています…";
      try {
        const presentation = await present(record, names, { nonce: req.nonce, aud: req.clientId });
        const { ok, doc } = await postJson(req.responseUri, { presentation, evidence: record.evidence || null });
        if (!ok) throw new Error(errorText(doc, "相手が受け付けませんでした"));
        result.textContent = "送信しました";
        result.dataset.verdict = doc.verdict || "";
        result.dataset.state = "sent";
      } catch (e) {
        result.textContent = `送信できませんでした（${e.message}）`;
        result.dataset.state = "failed";
        send.disabled = false;
      }
    },
  });
  section.replaceChildren(
    el("h2", { text: "提示の依頼" }),
    el("p", { class: "request-from" }, "依頼元: ", el("strong", { id: "request-client", text: req.clientId })),
    el("p", { text: asked.length
      ? `求められている項目: ${asked.map((n) => label(record, n)).join("、")}`
      : "項目の指定はありません。見せる項目を選んでください。" }),
    missing.length ? el("p", { class: "note", text: `この証明書にない項目: ${missing.join("、")}` }) : null,
    list,
    el("p", { class: "note", text: "選んだ項目だけが、この端末の鍵で署名されて依頼元に送られます。" }),
    el("div", { class: "actions" }, send,
      el("button", { type: "button", class: "button", text: "閉じる", onclick: close })),
    result,
  );
}

// ------------------------------------------------------------------ entry

async function onPresent(event) {
  const id = event.detail && event.detail.id;
  const record = id ? await getCredential(id) : null;
  if (!record) return;
  open();
  current = { record, checks: new Map() };
  renderChooser(record);
}

if (section) {
  const css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = "/static/present.css";
  document.head.append(css);
  window.addEventListener("shomei:present", (e) => { onPresent(e).catch((err) => console.error(err)); });
  window.addEventListener("pagehide", stopCamera);
}
