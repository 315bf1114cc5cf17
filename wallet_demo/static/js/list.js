// The 証明書 list and a certificate's details: title, issuer, dates in 西暦 and 和暦,
// status (有効 / 取り消し済み / 期限切れ / 確認できません) and anchoring (記録済み / 記録待ち).
// What the certificate says is marked data-value: it stays as issued in either language.
import { el } from "./dom.js";
import { joinList, lang, t } from "./i18n.js";
import { INVALID, SUSPENDED, VALID, fetchStatus } from "./status.js";
import { fetchEvidence, fetchTypeMetadata } from "./receive.js";
import { getCredential, putCredential } from "./store.js";
import { label, title } from "./types.js";
import { formatDate, isIsoDate } from "./wareki.js";

const STATUS_TTL = 60 * 1000; // the issuer lets verifiers cache a list 5 minutes

/** `{key, text}`: key is "valid", "revoked", "suspended", "expired" or "unknown". */
export function statusOf(record, now = Date.now()) {
  if (record.statusValue === INVALID) return { key: "revoked", text: t("取り消し済み", "Revoked") };
  if (record.statusValue === SUSPENDED) return { key: "suspended", text: t("一時停止中", "Suspended") };
  if (record.expiresAt && record.expiresAt <= now) return { key: "expired", text: t("期限切れ", "Expired") };
  if (record.statusValue === VALID) return { key: "valid", text: t("有効", "Valid") };
  return { key: "unknown", text: t("確認できません", "Cannot be checked") };
}

/** `{key, text}`: "anchored" once the anchor evidence is kept, else "pending". */
export function anchorOf(record) {
  return record.evidence
    ? { key: "anchored", text: t("記録済み", "Recorded on chain") }
    : { key: "pending", text: t("記録待ち", "Waiting to be recorded") };
}

/** The issuer's name in the page's language when the issuer gave one, else as given. */
export function issuerName(record) {
  const names = record.issuerNames || {};
  return names[lang()] || record.issuerName || record.issuer || "";
}

/** A claim's value as one line of text (dates as residents read them). */
export function valueText(value) {
  if (value === null || value === undefined) return "";
  if (isIsoDate(value)) return formatDate(value, lang());
  if (Array.isArray(value)) return joinList(value.map(valueText));
  if (typeof value === "object") return Object.values(value).map(valueText).join(" ");
  if (typeof value === "boolean") return value ? t("はい", "yes") : t("いいえ", "no");
  return String(value);
}

/** A span holding what the certificate says (`text`), marked data-value. */
export function dataValue(text, attrs = {}) {
  return el("span", { ...attrs, "data-value": true, text });
}

function present(id) {
  window.dispatchEvent(new CustomEvent("shomei:present", { detail: { id } }));
}

function dateLine(record) {
  const parts = [];
  if (record.issuedAt) parts.push(`${t("発行日", "Issued")}: ${formatDate(record.issuedAt, lang())}`);
  if (record.expiresAt) parts.push(`${t("有効期限", "Valid until")}: ${formatDate(record.expiresAt, lang())}`);
  return parts;
}

function badges(record) {
  const status = statusOf(record);
  const anchor = anchorOf(record);
  return el(
    "span",
    { class: "badges" },
    el("span", { class: `status status-${status.key}`, text: status.text, dataset: { status: status.key } }),
    el("span", {
      class: `anchor-state anchor-${anchor.key}`,
      text: anchor.text,
      dataset: { anchor: anchor.key },
    }),
  );
}

/** Fill `list` with one item per record; `onOpen(id)` opens the details. */
export function renderList(list, records, onOpen) {
  list.replaceChildren();
  for (const record of records) {
    const open = el(
      "button",
      { type: "button", class: "cert-open", onclick: () => onOpen(record.id) },
      el("span", { class: "cert-title", text: title(record) }),
      dataValue(issuerName(record), { class: "cert-issuer" }),
      ...dateLine(record).map((line) => el("span", { class: "cert-date", text: line })),
      badges(record),
    );
    const show = el("button", {
      type: "button",
      class: "button primary present-button",
      text: t("提示する", "Show"),
      onclick: () => present(record.id),
    });
    list.append(el("li", { class: "cert-item", dataset: { id: record.id } }, open, show));
  }
}

function formatValue(record, path, value) {
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== "object")) return dataValue(valueText(value));
    return el("ol", { class: "nested" }, ...value.map((item) => el("li", {}, formatValue(record, `${path}.*`, item))));
  }
  if (value && typeof value === "object") {
    const dl = el("dl", { class: "nested" });
    for (const [k, v] of Object.entries(value)) {
      dl.append(el("dt", { text: label(record, `${path}.${k}`) }), el("dd", {}, formatValue(record, `${path}.${k}`, v)));
    }
    return dl;
  }
  if (typeof value === "boolean") return document.createTextNode(valueText(value));
  return dataValue(valueText(value));
}

/** Fill the detail view's parts for `record`. */
export function renderDetail(record, parts) {
  parts.title.textContent = title(record);
  const summary = parts.summary;
  summary.replaceChildren(
    el("p", { class: "cert-issuer" }, `${t("発行元", "Issuer")}: `, dataValue(issuerName(record))),
    ...dateLine(record).map((line) => el("p", { class: "cert-date", text: line })),
    badges(record),
  );
  if (record.statusCheckedAt) {
    const when = new Date(record.statusCheckedAt).toLocaleString(lang() === "en" ? "en-GB" : "ja-JP");
    summary.append(el("p", { class: "note", text: `${t("状態の確認", "Status checked")}: ${when}` }));
  }
  if (record.evidence && record.evidence.block !== undefined) {
    const when = record.evidence.timestamp ? `, ${formatDate(record.evidence.timestamp * 1000, lang())}` : "";
    const text = t(`ブロックチェーンに記録: ブロック ${record.evidence.block}`, `Recorded on chain: block ${record.evidence.block}`);
    summary.append(el("p", { class: "note anchor-block", text: text + when }));
  }
  const claims = parts.claims;
  claims.replaceChildren();
  const rows = [
    ...record.claims.map((c) => [c.name, c.value]),
    ...Object.entries(record.plain || {}),
  ];
  for (const [name, value] of rows) {
    claims.append(
      el("dt", { text: label(record, name), dataset: { claim: name } }),
      el("dd", {}, formatValue(record, name, value)),
    );
  }
}

/**
 * Bring a record up to date when online: its status (at most once a minute unless
 * `force`), its anchor evidence until found, and its type metadata if it has none.
 * Resolves to the stored record.
 */
export async function refreshRecord(record, { force = false } = {}) {
  let current = record;
  if (!current.evidence) current = (await fetchEvidence(current)) || current;
  if (!current.typeMetadata) current = (await fetchTypeMetadata(current)) || current;
  if (!(await getCredential(current.id))) return current; // deleted meanwhile
  const due = force || !current.statusCheckedAt || Date.now() - current.statusCheckedAt > STATUS_TTL;
  if (current.status && due) {
    try {
      const value = await fetchStatus(current.status, current.issuer);
      const latest = await getCredential(current.id);
      if (!latest) return current; // deleted while the list was on its way
      current = { ...latest, statusValue: value, statusCheckedAt: Date.now() };
      await putCredential(current);
    } catch {
      // offline or the list is unreadable: keep the last known status
    }
  }
  return current;
}
