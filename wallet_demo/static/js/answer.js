// Answering any OpenID4VP 1.0 request (oid4vp.js): the resident scans the request QR
// code, pastes its link, or opens the wallet from it (/?request=…); the wallet shows
// who asks (for x509_san_dns the DNS name its certificate proved, and that the
// certificate is not from an authority the wallet knows), what is asked with the
// type metadata's labels and the values that would be sent; then sends exactly those
// claims with a key-binding JWT, or the refusal (error=access_denied).
import { match } from "./dcql.js";
import { el, fill } from "./dom.js";
import { Problem, joinList, messageOf, t } from "./i18n.js";
import { dataValue, valueText } from "./list.js";
import { isRequestLink, readRequest, sendAnswer, sendRefusal } from "./oid4vp.js";
import { presentPaths } from "./sdjwt.js";
import { listCredentials } from "./store.js";
import { claimKey, label, loadTypes, title } from "./types.js";

const section = document.getElementById("answer");
let hiddenViews = [];
let redraw = null;
let camera = null;

function open() {
  if (section.hidden) {
    hiddenViews = [...document.querySelectorAll("main > .view, #present")].filter((v) => !v.hidden);
    hiddenViews.forEach((v) => { v.hidden = true; });
  }
  section.hidden = false;
  window.scrollTo(0, 0);
}

function close() {
  stopCamera();
  section.replaceChildren();
  section.hidden = true;
  hiddenViews.forEach((v) => { v.hidden = false; });
  hiddenViews = [];
  redraw = null;
}

function show(draw) {
  redraw = draw;
  draw();
}

function closeButton(text = t("閉じる", "Close")) {
  return el("button", { type: "button", id: "vp-close", class: "button", text, onclick: close });
}

// ------------------------------------------------------------------ scan or paste

function stopCamera() {
  if (!camera) return;
  clearInterval(camera.timer);
  camera.stream.getTracks().forEach((track) => track.stop());
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
        if (doc.found && isRequestLink(doc.text)) { stopCamera(); onText(doc.text); }
      } catch { /* a dropped frame: the next one follows */ }
      busy = false;
    }, "image/jpeg", 0.85);
  }, 300) };
}

function entry(problem = null) {
  let pasted = "";
  show(() => {
    stopCamera();
    const video = el("video", { id: "vp-video", playsinline: true, muted: true });
    const textarea = el("textarea", { id: "vp-request-text", rows: "3", autocomplete: "off", spellcheck: "false" });
    textarea.value = pasted;
    textarea.addEventListener("input", () => { pasted = textarea.value; });
    const error = el("p", { id: "vp-error", class: "error", role: "alert", hidden: !problem, text: problem ? messageOf(problem) : "" });
    section.replaceChildren(
      el("h2", { text: t("提示の依頼に答える", "Answer a request to show a certificate") }),
      el("p", { text: t(
        "相手の画面に表示された依頼のQRコードを読み取るか、依頼のリンク（openid4vp://…）を貼り付けてください。",
        "Scan the request QR code on the other party's screen, or paste the request link (openid4vp://…).",
      ) }),
      el("button", { type: "button", id: "vp-camera", class: "button primary", text: t("カメラで読み取る", "Scan with the camera"),
        onclick: () => startCamera(video, (text) => take(text)).catch(() => {
          error.textContent = t("カメラを使えません。リンクを貼り付けてください。", "Cannot use the camera: paste the link instead.");
          error.hidden = false;
        }) }),
      el("div", { class: "camera" }, video),
      el("label", { for: "vp-request-text", text: t("依頼のリンク", "Request link") }), textarea,
      el("div", { class: "actions" },
        el("button", { type: "button", id: "vp-request-read", class: "button", text: t("読み込む", "Read"), onclick: () => take(textarea.value) }),
        closeButton(t("やめる", "Cancel"))),
      error,
    );
  });
}

// ------------------------------------------------------------------ the request

async function take(text) {
  stopCamera();
  open();
  show(() => section.replaceChildren(
    el("h2", { text: t("提示の依頼", "Request to show") }),
    el("p", { id: "vp-loading", role: "status", text: t("依頼を確認しています…", "Checking the request…") }),
  ));
  let request, records;
  try {
    [request, records] = await Promise.all([readRequest(text), listCredentials(), loadTypes()]);
  } catch (e) {
    const why = e instanceof Problem ? e : new Problem(e.message, e.message);
    entry(new Problem(`この依頼には答えられません: ${why.ja}`, `This request cannot be answered: ${why.en}`));
    return;
  }
  confirm(request, match(request.query, records));
}

function whoAsks(request) {
  const parts = [];
  if (request.certificate) {
    const c = request.certificate;
    parts.push(el("p", { class: "request-from" }, `${t("依頼元", "From")}: `,
      el("strong", { id: "vp-client", "data-prefix": request.prefix, text: c.dnsName })));
    parts.push(el("p", { id: "vp-trust", class: "note", text: c.selfIssued
      ? t(`この名前（${c.dnsName}）は依頼元の証明書の署名で確かめました。ただし、この証明書は依頼元が自分で発行したもの（自己署名）で、信頼できる認証局のものではありません。`,
        `The name ${c.dnsName} was checked with the signature of the verifier's certificate. The certificate is self-signed, not from a known authority.`)
      : t(`この名前（${c.dnsName}）は依頼元の証明書の署名で確かめました。ただし、このウォレットが知っている認証局の証明書ではありません。`,
        `The name ${c.dnsName} was checked with the signature of the verifier's certificate, which is not from an authority this wallet knows.`) }));
  } else {
    parts.push(el("p", { class: "request-from" }, `${t("依頼元", "From")}: `,
      el("strong", { id: "vp-client", "data-prefix": request.prefix, text: new URL(request.responseUri).origin })));
    parts.push(el("p", { id: "vp-trust", class: "note", text: t(
      "この依頼には署名がありません。依頼元の身元は確かめられていません。送信先のアドレスだけが分かっています。",
      "This request is not signed: who sent it is not proven, only the address the answer goes to.",
    ) }));
  }
  // No self-declared name or purpose is shown: OpenID4VP 1.0 has the wallet ignore
  // client_metadata beyond jwks, encryption and formats (§5.1), and an unproven name
  // beside a proven one would mislead. A purpose would come as verifier_info
  // attestations, which need a trust framework this wallet does not have.
  return parts;
}

function claimItems(choice) {
  return choice.claims.map((c) => el("li", { "data-path": JSON.stringify(c.path) },
    `${label(choice.record, claimKey(c.path))}: `,
    dataValue(c.values.map(valueText).join(" / "))));
}

function confirm(request, found) {
  const picked = new Map(found.answers.map((a) => [a.queryId, 0])); // query id -> index of the choice
  let outcome = null; // {state, ja, en}
  let busy = false;
  const report = (next) => {
    outcome = next;
    redraw();
  };
  show(() => {
    const status = el("p", { id: "vp-status", role: "status", "aria-live": "polite" });
    if (outcome) {
      status.textContent = t(outcome.ja, outcome.en);
      status.dataset.state = outcome.state;
    }
    const asked = el("div", { id: "vp-asked" });
    for (const answer of found.answers) {
      const choice = answer.choices[picked.get(answer.queryId)];
      const box = el("div", { class: "present-preview", "data-query": answer.queryId },
        el("h3", { text: title(choice.record) }));
      if (answer.choices.length > 1) {
        const select = el("select", { "aria-label": t("送る証明書", "Certificate to send") });
        answer.choices.forEach((c, i) => {
          select.append(el("option", { value: String(i), text: `${title(c.record)}（${c.record.issuerName || c.record.issuer}）` }));
        });
        select.value = String(picked.get(answer.queryId));
        select.addEventListener("change", () => { picked.set(answer.queryId, Number(select.value)); redraw(); });
        box.append(select);
      }
      box.append(choice.claims.length
        ? el("ul", { class: "vp-claims present-shown" }, ...claimItems(choice))
        : el("p", { class: "note", text: t("項目は求められていません（証明書を持っていることだけを示します）",
          "No items are asked for (only that you hold the certificate)") }));
      asked.append(box);
    }
    const canAnswer = found.missing.length === 0 && found.answers.length > 0;
    const consent = el("button", {
      type: "button", id: "vp-consent", class: "button primary", text: t("同意して送信する", "Agree and send"),
      disabled: busy || !canAnswer || (outcome && outcome.state !== "failed"),
      onclick: async () => {
        busy = true;
        report({ state: "sending", ja: "送信しています…", en: "Sending…" });
        try {
          const vpToken = {};
          for (const answer of found.answers) {
            const choice = answer.choices[picked.get(answer.queryId)];
            vpToken[answer.queryId] = [await presentPaths(choice.record, choice.claims.map((c) => c.path),
              { nonce: request.nonce, aud: request.clientId })];
          }
          const { redirectUri } = await sendAnswer(request, vpToken);
          report({ state: "sent", ja: "送信しました", en: "Sent" });
          if (redirectUri) location.assign(redirectUri);
        } catch (e) {
          const why = e instanceof Problem ? e : new Problem(e.message, e.message);
          report({ state: "failed", ja: `送信できませんでした（${why.ja}）`, en: `Could not send it (${why.en})` });
        }
        busy = false;
        redraw();
      },
    });
    const refuse = el("button", {
      type: "button", id: "vp-refuse", class: "button", text: t("断る", "Refuse"),
      disabled: busy || (outcome && outcome.state !== "failed"),
      onclick: async () => {
        busy = true;
        redraw();
        try {
          const { redirectUri } = await sendRefusal(request);
          report({ state: "refused", ja: "お断りしました。何も送っていません", en: "Refused: nothing was sent" });
          if (redirectUri) location.assign(redirectUri);
        } catch (e) {
          const why = e instanceof Problem ? e : new Problem(e.message, e.message);
          report({ state: "failed", ja: `断りを伝えられませんでした（${why.ja}）`, en: `Could not tell the verifier (${why.en})` });
        }
        busy = false;
        redraw();
      },
    });
    fill(section,
      el("h2", { text: t("提示の依頼", "Request to show") }),
      ...whoAsks(request),
      el("h3", { text: t("求められている内容", "What is asked for") }),
      asked,
      found.missing.length ? el("p", { id: "vp-missing", class: "error", text: t(
        `この依頼に答えられる証明書がありません（${joinList(found.missing)}）`,
        `No certificate here answers this request (${found.missing.join(", ")})`,
      ) }) : null,
      canAnswer ? el("p", { class: "note", text: t(
        "同意すると、ここに表示された項目だけが、この端末の鍵で署名されて依頼元に送られます。これ以外の項目は送られません。",
        "If you agree, only the items shown here are sent, signed with this phone's key. No other item is sent.",
      ) }) : null,
      el("div", { class: "actions" }, canAnswer ? consent : null, refuse, closeButton()),
      status,
    );
  });
}

// ------------------------------------------------------------------ entry

if (section) {
  window.addEventListener("shomei:request", (e) => {
    const text = e.detail && e.detail.text;
    open();
    if (text) take(text).catch((err) => console.error(err));
    else entry();
  });
  window.addEventListener("shomei:lang", () => { if (redraw) redraw(); });
  window.addEventListener("pagehide", stopCamera);
}
