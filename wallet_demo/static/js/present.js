// Presenting a certificate: the resident picks the items to show, sees exactly what
// the company will see, and shows a QR code (embedded, or a link to a sealed copy on
// the wallet's relay when the presentation is too large); "answer a request" hands over
// to answer.js (a verifier's OpenID4VP request).
// Every screen is drawn in the page's language and drawn again when it changes.
import { b32, b64uDecode } from "./b64.js";
import { el, fill } from "./dom.js";
import { Problem, messageOf, t } from "./i18n.js";
import { dataValue, valueText } from "./list.js";
import { encode as qrEncode, svg as qrSvg } from "./qrcode.js";
import { REGISTERED, present } from "./sdjwt.js";
import { getCredential } from "./store.js";
import { label, loadTypes, title } from "./types.js";

// The usual choices per document type; `id` (data-preset) stays the same in either language.
const PRESETS = {
  juminhyo: [
    { id: "住所確認", ja: "住所確認", en: "Address check", names: ["family_name", "given_name", "address"] },
    { id: "年齢確認", ja: "年齢確認", en: "Age check", names: ["birthdate"] },
  ],
  partnership: [
    {
      id: "関係の確認",
      ja: "関係の確認",
      en: "Partnership check",
      names: ["holder_family_name", "holder_given_name", "partner_family_name", "partner_given_name", "declared_on"],
    },
  ],
  contract: [
    {
      id: "契約の確認",
      ja: "契約の確認",
      en: "Contract check",
      names: ["title", "contract_number", "orderer", "contractor", "concluded_on"],
    },
  ],
};

// Test hook: ?present-link=1 forces link mode, so tests reach it with any credential.
const FORCE_LINK = new URLSearchParams(location.search).get("present-link") === "1";

const section = document.getElementById("present");
let hiddenViews = [];
// {record, checks: Map(name -> checkbox), redraw: () => void} while a screen is open
let current = null;

// ------------------------------------------------------------------ helpers

async function postJson(url, body) {
  const resp = await fetch(url, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body), cache: "no-store", credentials: "omit",
  });
  let doc;
  try { doc = await resp.json(); } catch { doc = null; }
  return { ok: resp.ok, status: resp.status, doc };
}

/** The server's reason, from the one JSON error document (`{error: {code, message: {ja, en}}}`). */
function refusal(doc, ja, en) {
  const e = doc && doc.error;
  const m = e && typeof e === "object" ? e.message : null;
  if (m && typeof m === "object" && (m.ja || m.en)) return new Problem(m.ja || m.en, m.en || m.ja);
  if (typeof m === "string" && m) return new Problem(`${ja}（${m}）`, `${en} (${m})`);
  return new Problem(ja, en);
}

function claimRow(record, c, box) {
  return el("label", { class: "present-claim", for: box.id }, box,
    el("span", { class: "present-claim-label", text: label(record, c.name) }),
    dataValue(valueText(c.value), { class: "present-claim-value" }));
}

/** "<label>: <value>" with the value marked as the certificate's. */
function labelled(tag, record, name, value) {
  return el(tag, {}, `${label(record, name)}: `, dataValue(valueText(value)));
}

// ------------------------------------------------------------------ views

function open() {
  hiddenViews = [...document.querySelectorAll("main > .view")].filter((v) => !v.hidden);
  hiddenViews.forEach((v) => { v.hidden = true; });
  section.hidden = false;
  window.scrollTo(0, 0);
}

function close() {
  section.replaceChildren();
  section.hidden = true;
  hiddenViews.forEach((v) => { v.hidden = false; });
  hiddenViews = [];
  current = null;
}

function show(redraw) {
  current.redraw = redraw;
  redraw();
}

function selectedNames() {
  return [...current.checks].filter(([, box]) => box.checked).map(([name]) => name);
}

function plainItems(record) {
  return Object.entries(record.plain || {}).filter(([k]) => !REGISTERED.has(k));
}

function renderPreview(box) {
  const record = current.record;
  const names = selectedNames();
  const dl = el("dl", { class: "present-preview-list" });
  for (const c of record.claims.filter((c) => names.includes(c.name))) {
    dl.append(el("dt", { text: label(record, c.name) }), el("dd", {}, dataValue(valueText(c.value))));
  }
  for (const [k, v] of plainItems(record)) {
    dl.append(el("dt", { text: label(record, k) }), el("dd", {}, dataValue(valueText(v))));
  }
  box.replaceChildren(
    el("h3", { text: t("相手に見える内容", "What the other party will see") }),
    names.length ? dl : el("p", { class: "error", text: t("項目が選ばれていません", "No items are chosen") }),
    el("p", { class: "note", text: t(
      "発行元（市）と有効期限、取り消されていないかどうかも相手に伝わります。これ以外の項目は相手に見えません。",
      "The issuer (the city), the expiry date and whether it has been revoked are shown too. No other item is shown.",
    ) }),
  );
  current.showButton.disabled = names.length === 0;
}

function renderChooser(record, chosen = []) {
  const preview = el("div", { class: "present-preview", id: "present-preview", "aria-live": "polite" });
  current.checks = new Map();
  const list = el("div", { class: "present-claims", role: "group", "aria-label": t("見せる項目", "Items to show") });
  for (const c of record.claims) {
    const box = el("input", { type: "checkbox", name: c.name, value: c.name, id: `present-claim-${c.name}` });
    box.checked = chosen.includes(c.name);
    box.addEventListener("change", () => renderPreview(preview));
    current.checks.set(c.name, box);
    list.append(claimRow(record, c, box));
  }
  const presets = el("div", { class: "present-presets" });
  for (const p of PRESETS[record.docType] || []) {
    presets.append(el("button", {
      type: "button", class: "button", "data-preset": p.id, text: t(p.ja, p.en),
      onclick: () => {
        current.checks.forEach((box, name) => { box.checked = p.names.includes(name); });
        renderPreview(preview);
      },
    }));
  }
  current.showButton = el("button", {
    type: "button", id: "present-show", class: "button primary", text: t("QRコードを表示", "Show the QR code"),
    disabled: true, onclick: () => showQr().catch((e) => fail(e)),
  });
  fill(section,
    el("button", { type: "button", id: "present-back", class: "link-button", text: t("← 戻る", "← Back"), onclick: close }),
    el("h2", { id: "present-title", text: t(`${title(record)}を提示する`, `Show your ${title(record)}`) }),
    el("p", { text: t(
      "相手に見せる項目を選んでください。選ばなかった項目は相手に見えません。",
      "Choose the items to show. Items you do not choose stay hidden.",
    ) }),
    presets.childElementCount ? el("h3", { text: t("よく使う組み合わせ", "Common choices") }) : null,
    presets.childElementCount ? presets : null,
    el("h3", { text: t("項目", "Items") }), list,
    preview,
    el("div", { class: "actions" }, current.showButton,
      el("button", {
        type: "button", id: "present-answer", class: "button", text: t("依頼に答える", "Answer a request"),
        onclick: answerRequest,
      })),
    el("p", { id: "present-status", class: "note", role: "status", "aria-live": "polite" }),
    el("p", { id: "present-error", class: "error", role: "alert", hidden: true }),
  );
  renderPreview(preview);
}

// The chooser keeps what was ticked when it is drawn again (another language, back
// from answering a request).
function chooser(record) {
  show(() => renderChooser(record, selectedNames()));
}

function status(text) {
  const node = document.getElementById("present-status");
  if (node) node.textContent = text || "";
}

function fail(err) {
  const node = document.getElementById("present-error");
  if (!node) return;
  node.textContent = t(`提示できませんでした（${messageOf(err)}）`, `Could not show it (${messageOf(err)})`);
  node.hidden = false;
  status("");
}

// ------------------------------------------------------------------ QR code

async function sealAndUpload(containerB64u) {
  const container = b64uDecode(containerB64u);
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
  if (!resp.ok) {
    throw new Problem(`中継サーバーに保存できません（${resp.status}）`, `the relay did not take it (${resp.status})`);
  }
  // As LinkRef.to_url(): scheme and host upper-case, so most of the URL is alphanumeric.
  const head = `${base.protocol.slice(0, -1).toUpperCase()}://${base.host.toUpperCase()}`;
  return `${head}${base.pathname}/${b32(id)}#${b32(key)}`;
}

async function showQr() {
  const record = current.record;
  const names = selectedNames();
  status(t("QRコードを作っています…", "Making the QR code…"));
  document.getElementById("present-error").hidden = true;
  const presentation = await present(record, names, null);
  const { ok, doc } = await postJson("/api/encode", { presentation, evidence: record.evidence || null });
  if (!ok || !doc) throw refusal(doc, "QRコードを作れません", "cannot make the QR code");
  let text, mode;
  if (doc.mode === "embedded" && !FORCE_LINK) {
    text = doc.payload;
    mode = "embedded";
  } else {
    const container = doc.mode === "too_large" ? doc.container : await containerFor(presentation, record);
    text = await sealAndUpload(container);
    mode = "link";
  }
  if (current && current.record === record) show(() => renderQr(record, names, text, mode));
}

// Only for the link-mode test hook: the encoder answered "embedded", so ask it again
// with the container that the embedded payload holds.
async function containerFor(presentation, record) {
  const { doc } = await postJson("/api/encode?container=1", { presentation, evidence: record.evidence || null });
  if (doc && doc.container) return doc.container;
  throw new Problem("中継用のデータを作れません", "cannot make the data for the relay");
}

function renderQr(record, names, text, mode) {
  const qr = qrEncode(text);
  const picture = qrSvg(qr, { border: 4, scale: Math.max(3, Math.floor(Math.min(window.innerWidth - 32, 640) / (qr.size + 8))) });
  picture.setAttribute("aria-label", t("提示用QRコード", "QR code to show"));
  const shown = el("ul", { class: "present-shown" },
    ...record.claims.filter((c) => names.includes(c.name)).map((c) => labelled("li", record, c.name, c.value)));
  section.replaceChildren(
    el("h2", { text: t("相手にこのQRコードを読み取ってもらってください", "Let the other party scan this QR code") }),
    el("div", { id: "present-qr", class: "present-qr", "data-mode": mode, "data-version": String(qr.version) }, picture),
    el("p", { class: "note", text: mode === "link"
      ? t("提示データは暗号化して中継サーバーに10分間だけ置かれます。読み取られると消えます。",
        "The data is encrypted and kept on the relay for 10 minutes only; it is deleted once read.")
      : t("QRコードの中に提示データが入っています。", "The data is inside the QR code itself.") }),
    el("h3", { text: t("このQRコードに入っている項目", "Items in this QR code") }), shown,
    copyButton(text),
    el("button", { type: "button", id: "present-close", class: "button primary", text: t("閉じる", "Close"), onclick: close }),
  );
  window.scrollTo(0, 0);
}

// For a company checking on the same computer (or a chat, an e-mail): the QR code's text,
// which the verifier takes pasted as well as scanned.
function copyButton(text) {
  const note = el("p", { class: "note", id: "present-copied", "aria-live": "polite" });
  const button = el("button", {
    type: "button", id: "present-copy", class: "button", text: t("QRコードの内容をテキストでコピー", "Copy the QR code as text"),
    onclick: () => {
      const done = () => {
        note.textContent = t(
          "コピーしました。確認サービスの「貼り付け」に貼り付けられます。",
          "Copied: paste it into the checking service's “Paste” box.",
        );
      };
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

// A verifier's request (OpenID4VP): answer.js reads it, finds the certificates it asks
// for and asks the resident's consent.
function answerRequest() {
  close();
  window.dispatchEvent(new CustomEvent("shomei:request", { detail: {} }));
}

// ------------------------------------------------------------------ entry

async function onPresent(event) {
  const id = event.detail && event.detail.id;
  const [record] = await Promise.all([id ? getCredential(id) : null, loadTypes()]);
  if (!record) return;
  if (current) close();
  open();
  current = { record, checks: new Map(), redraw: null };
  chooser(record);
}

if (section) {
  const css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = "/static/present.css";
  document.head.append(css);
  window.addEventListener("shomei:present", (e) => { onPresent(e).catch((err) => console.error(err)); });
  window.addEventListener("shomei:lang", () => { if (current && current.redraw) current.redraw(); });
}
