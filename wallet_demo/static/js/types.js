// Titles and claim labels (ja, en) from SD-JWT VC type metadata. A record keeps the
// metadata its vct resolved to when it was received (receive.js); the document types
// the wallet knows are also published by the wallet's server (/types.json, built from
// the core's type metadata) and kept by the service worker, so a record without
// metadata of its own is labelled too, offline as well.
import { lang, t } from "./i18n.js";

let builtIn = {}; // document type name -> type metadata
let loading = null;
const tables = new WeakMap(); // type metadata -> Map(claim key -> display entries)

/** Load the built-in types once (resolves even when they cannot be had: labels fall back). */
export function loadTypes() {
  if (!loading) {
    loading = fetch("/types.json", { credentials: "omit" })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`types: HTTP ${r.status}`))))
      .then((doc) => {
        if (doc && typeof doc === "object") builtIn = doc;
        return builtIn;
      })
      .catch(() => {
        loading = null; // try again next time
        return builtIn;
      });
  }
  return loading;
}

/** The key of a metadata claim path: its parts joined by dots, array items as "*". */
export function claimKey(path) {
  return path.map((p) => (p === null ? "*" : String(p))).join(".");
}

function pick(display, field, want) {
  const entries = Array.isArray(display) ? display.filter((d) => d && typeof d[field] === "string") : [];
  const tag = (d) => String(d.locale || d.lang || "").toLowerCase().split("-")[0];
  const hit = entries.find((d) => tag(d) === want) || entries.find((d) => tag(d) === "ja") || entries[0];
  return hit ? hit[field] : null;
}

/** The type metadata of a record (or of a document type's name), or null. */
export function metadataOf(subject) {
  const record = typeof subject === "string" ? { docType: subject } : subject || {};
  const own = record.typeMetadata;
  if (own && Array.isArray(own.claims)) return own;
  if (record.docType && Object.hasOwn(builtIn, record.docType)) return builtIn[record.docType];
  const named = /\/vct\/([^/]+)\/\d+$/.exec(record.vct || "");
  return named && Object.hasOwn(builtIn, named[1]) ? builtIn[named[1]] : null;
}

/** The title of a record's type (or a type's name) in `want` (the page's language). */
export function title(subject, want = lang()) {
  const meta = metadataOf(subject);
  const name = meta && (pick(meta.display, "name", want) || meta.name);
  if (name) return name;
  const docType = typeof subject === "string" ? subject : subject && subject.docType;
  return docType && docType !== "unknown" ? docType : t("証明書", "Certificate");
}

/** The label of a claim (`key` like "children.*.given_name") in `want`, else the key. */
export function label(subject, key, want = lang()) {
  const meta = metadataOf(subject);
  if (!meta) return key;
  let table = tables.get(meta);
  if (!table) {
    table = new Map();
    for (const claim of Array.isArray(meta.claims) ? meta.claims : []) {
      if (Array.isArray(claim.path)) table.set(claimKey(claim.path), claim.display);
    }
    tables.set(meta, table);
  }
  return (table.has(key) && pick(table.get(key), "label", want)) || key;
}
