// The 証明書 list and a certificate's details: title, issuer, dates in 西暦 and 和暦,
// status (有効 / 取り消し済み / 期限切れ / 確認できません) and anchoring (記録済み / 記録待ち).
import { label, title } from "./labels.js";
import { lang, t } from "./i18n.js";
import { INVALID, SUSPENDED, VALID, fetchStatus } from "./status.js";
import { fetchEvidence } from "./receive.js";
import { getCredential, putCredential } from "./store.js";
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

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
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
  const box = el("span", "badges");
  const status = statusOf(record);
  const s = el("span", `status status-${status.key}`, status.text);
  s.dataset.status = status.key;
  const anchor = anchorOf(record);
  const a = el("span", `anchor-state anchor-${anchor.key}`, anchor.text);
  a.dataset.anchor = anchor.key;
  box.append(s, a);
  return box;
}

/** Fill `list` with one item per record; `onOpen(id)` opens the details. */
export function renderList(list, records, onOpen) {
  list.replaceChildren();
  for (const record of records) {
    const item = el("li", "cert-item");
    item.dataset.id = record.id;
    const open = el("button", "cert-open");
    open.type = "button";
    open.append(
      el("span", "cert-title", title(record.docType, lang())),
      el("span", "cert-issuer", record.issuerName),
    );
    for (const line of dateLine(record)) open.append(el("span", "cert-date", line));
    open.append(badges(record));
    open.addEventListener("click", () => onOpen(record.id));
    const show = el("button", "button primary present-button", t("提示する", "Show"));
    show.type = "button";
    show.addEventListener("click", () => present(record.id));
    item.append(open, show);
    list.append(item);
  }
}

function formatValue(docType, path, value) {
  if (isIsoDate(value)) return document.createTextNode(formatDate(value, lang()));
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== "object")) {
      return document.createTextNode(value.join(lang() === "en" ? ", " : "、"));
    }
    const list = el("ol", "nested");
    for (const item of value) {
      const li = el("li");
      li.append(formatValue(docType, `${path}.*`, item));
      list.append(li);
    }
    return list;
  }
  if (value && typeof value === "object") {
    const dl = el("dl", "nested");
    for (const [k, v] of Object.entries(value)) {
      dl.append(el("dt", null, label(docType, `${path}.${k}`, lang())));
      const dd = el("dd");
      dd.append(formatValue(docType, `${path}.${k}`, v));
      dl.append(dd);
    }
    return dl;
  }
  if (typeof value === "boolean") return document.createTextNode(value ? t("はい", "yes") : t("いいえ", "no"));
  return document.createTextNode(value === null || value === undefined ? "" : String(value));
}

/** Fill the detail view's parts for `record`. */
export function renderDetail(record, parts) {
  parts.title.textContent = title(record.docType, lang());
  const summary = parts.summary;
  summary.replaceChildren(el("p", "cert-issuer", `${t("発行元", "Issuer")}: ${record.issuerName}`));
  for (const line of dateLine(record)) summary.append(el("p", "cert-date", line));
  summary.append(badges(record));
  if (record.statusCheckedAt) {
    const when = new Date(record.statusCheckedAt).toLocaleString(lang() === "en" ? "en-GB" : "ja-JP");
    summary.append(el("p", "note", `${t("状態の確認", "Status checked")}: ${when}`));
  }
  if (record.evidence && record.evidence.block !== undefined) {
    const when = record.evidence.timestamp ? `, ${formatDate(record.evidence.timestamp * 1000, lang())}` : "";
    const text = t(`ブロックチェーンに記録: ブロック ${record.evidence.block}`, `Recorded on chain: block ${record.evidence.block}`);
    summary.append(el("p", "note anchor-block", text + when));
  }
  const claims = parts.claims;
  claims.replaceChildren();
  const rows = [
    ...record.claims.map((c) => [c.name, c.value]),
    ...Object.entries(record.plain || {}),
  ];
  for (const [name, value] of rows) {
    const dt = el("dt", null, label(record.docType, name, lang()));
    dt.dataset.claim = name;
    const dd = el("dd");
    dd.append(formatValue(record.docType, name, value));
    claims.append(dt, dd);
  }
}

/**
 * Bring a record up to date when online: its status (at most once a minute unless
 * `force`) and its anchor evidence until found. Resolves to the stored record.
 */
export async function refreshRecord(record, { force = false } = {}) {
  let current = record;
  if (!current.evidence) current = (await fetchEvidence(current)) || current;
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
