// Receiving a certificate from the city (OpenID4VCI 1.0, pre-authorized code flow with
// a tx_code), exactly as tests/issuer/test_oid4vci.py walks it: issuer metadata →
// token (code + 確認番号) → nonce → a new holder key → proof JWT → credential, whose
// signature is checked against the issuer's published keys; then the
// SD-JWT VC type metadata its vct resolves to, kept with it for titles and labels.
import { b64uDecode, utf8 } from "./b64.js";
import { Problem } from "./i18n.js";
import { verifyIssuerJws } from "./issuerkeys.js";
import { createHolderKey, signJwt } from "./keys.js";
import { REGISTERED, parse, resolveValue } from "./sdjwt.js";
import { hex, sha256 } from "./sha256.js";
import { deleteKey, getCredential, putCredential } from "./store.js";

export const OFFER_SCHEME = "openid-credential-offer://";
export const PRE_AUTHORIZED = "urn:ietf:params:oauth:grant-type:pre-authorized_code";
const INTEGRITY = { sha256: "SHA-256", sha384: "SHA-384", sha512: "SHA-512" };
const MAX_TYPE_METADATA = 256 * 1024;

/** A refusal or failure the resident can act on: `kind` is "wrong_code", "used",
 * "expired", "blocked", "not_valid", "network", "offer" (not an offer) or "issuer". */
export class ReceiveError extends Problem {
  constructor(kind, ja, en, extra = {}) {
    super(ja, en);
    this.kind = kind;
    Object.assign(this, extra);
  }
}

function badOffer() {
  return new ReceiveError(
    "offer",
    "受け取り用のQRコード（リンク）ではありません",
    "this is not a credential offer QR code or link",
  );
}

/**
 * Where the credential offer in `text` is: an `openid-credential-offer://` link (the
 * offer by value, `?credential_offer=…`, or by reference, `?credential_offer_uri=…`),
 * the same query on this app's URL (or `#offer=…`), or the offer's JSON. Returns
 * `{document}` (by value) or `{uri}` (by reference, an http(s) URL); throws ReceiveError.
 */
export function locateOffer(text) {
  const value = String(text || "").trim();
  try {
    if (value.startsWith("{")) return { document: JSON.parse(value) };
    const query = value.includes("?") ? value.slice(value.indexOf("?") + 1) : value;
    const params = new URLSearchParams(query.replace(/^#/, ""));
    const inner = params.get("offer");
    const byValue = params.get("credential_offer");
    const byReference = params.get("credential_offer_uri");
    if (inner !== null && byValue === null && byReference === null) return locateOffer(inner);
    if (byValue !== null && byReference === null) return { document: JSON.parse(byValue) };
    if (byReference !== null && byValue === null && /^https?:\/\/[^\s]+$/.test(byReference)) {
      return { uri: byReference };
    }
  } catch {
    // not JSON: not an offer
  }
  throw badOffer();
}

/**
 * The credential offer `document` as the wallet uses it: `{credential_issuer,
 * credential_configuration_ids, code, txCode: {length, input_mode, description} |
 * null}`; throws ReceiveError when it is not a pre-authorized code offer.
 */
export function readOffer(document) {
  const grant = document && document.grants && document.grants[PRE_AUTHORIZED];
  const issuer = document && document.credential_issuer;
  const ids = document && document.credential_configuration_ids;
  if (typeof issuer !== "string" || !/^https?:\/\//.test(issuer) || !grant) throw badOffer();
  if (!Array.isArray(ids) || typeof ids[0] !== "string") throw badOffer();
  const code = grant["pre-authorized_code"];
  if (typeof code !== "string" || !code) throw badOffer();
  return {
    credential_issuer: issuer.replace(/\/+$/, ""),
    credential_configuration_ids: ids,
    code,
    txCode: grant.tx_code || null,
  };
}

/** The offer in `text` when it carries it by value; throws ReceiveError otherwise. */
export function parseOffer(text) {
  const found = locateOffer(text);
  if (!found.document) throw badOffer();
  return readOffer(found.document);
}

/**
 * The offer in `text`, by value or fetched from its `credential_offer_uri` (OpenID4VCI
 * 1.0 §4.1.3); rejects with ReceiveError ("used" when the issuer no longer serves it).
 */
export async function resolveOffer(text) {
  const found = locateOffer(text);
  if (found.document) return readOffer(found.document);
  const { response, body } = await call(found.uri, { headers: { Accept: "application/json" } });
  if (response.status === 404) {
    throw new ReceiveError(
      "used",
      "この受け取りは期限切れか、すでに使われています。窓口で新しいQRコードを表示してもらってください",
      "this offer has expired or was already used: ask the counter for a new QR code",
    );
  }
  if (!response.ok || !body) throw badOffer();
  return readOffer(body);
}

async function call(url, init) {
  let response;
  try {
    response = await fetch(url, { ...init, cache: "no-store", credentials: "omit" });
  } catch {
    throw new ReceiveError(
      "network",
      "発行元に接続できません。インターネット接続を確かめて、もう一度お試しください",
      "cannot reach the issuer: check the connection and try again",
    );
  }
  let body;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return { response, body };
}

function issuerError(body, status) {
  const description = (body && body.error_description) || "";
  const remaining = body && Number.isInteger(body.attempts_remaining) ? body.attempts_remaining : null;
  const code = body && body.error;
  if (code === "invalid_grant" && /tx_code/.test(description)) {
    const more = remaining === null ? ""
      : remaining === 0 ? "この受け取りは使えなくなりました。窓口で受け取り用のQRコードをもう一度出してもらってください。"
      : `あと${remaining}回まちがえると、この受け取りは使えなくなります。`;
    const moreEn = remaining === null ? ""
      : remaining === 0 ? " This offer is now blocked: ask the counter for a new QR code."
      : ` ${remaining} more wrong codes block this offer.`;
    return new ReceiveError(
      "wrong_code",
      `確認番号が違います。窓口の画面の6桁の番号をもう一度入力してください。${more}`,
      `wrong code: enter the 6 digits shown at the counter again.${moreEn}`,
      { remaining },
    );
  }
  if (code === "invalid_grant" && /expired/.test(description)) {
    return new ReceiveError(
      "expired",
      "この受け取りは期限切れです。窓口で新しいQRコードを表示してもらってください",
      "this offer has expired: ask the counter for a new QR code",
    );
  }
  if (code === "invalid_grant" && /blocked|already used/.test(description)) {
    return new ReceiveError(
      "used",
      "この受け取りはすでに使われたか、番号の誤りが続いたため無効です。窓口で新しいQRコードを表示してもらってください",
      "this offer was already used or is blocked: ask the counter for a new QR code",
    );
  }
  if (code === "invalid_grant" && /no longer valid/.test(description)) {
    return new ReceiveError(
      "not_valid",
      "この証明書は取り消されたか期限切れのため、受け取れません",
      "the certificate is no longer valid",
    );
  }
  if (code === "invalid_grant") {
    return new ReceiveError(
      "used",
      "この受け取りコードは無効です。窓口で新しいQRコードを表示してもらってください",
      "unknown offer: ask the counter for a new QR code",
    );
  }
  return new ReceiveError(
    "issuer",
    `発行元が受け付けませんでした（${code || status}）。もう一度お試しください`,
    `the issuer refused the request (${code || status}${description ? `: ${description}` : ""})`,
  );
}

/** The issuer's metadata (`/.well-known/openid-credential-issuer`). */
export async function issuerMetadata(issuer) {
  const { response, body } = await call(`${issuer}/.well-known/openid-credential-issuer`, {});
  if (!response.ok || !body || body.credential_issuer !== issuer) {
    throw new ReceiveError(
      "issuer",
      "発行元の情報を読み込めません",
      "cannot read the issuer's metadata",
    );
  }
  return body;
}

function byLanguage(display, key) {
  const out = {};
  for (const d of Array.isArray(display) ? display : []) {
    const tag = String(d.locale || d.lang || "ja").slice(0, 2).toLowerCase();
    if (typeof d[key] === "string" && !(tag in out)) out[tag] = d[key];
  }
  return out;
}

/**
 * From the issuer's metadata: its display names and the type's titles, each
 * `{ja, en, …}` by language, `issuerName` (the Japanese name, else the first) and the
 * type's `vct`.
 */
export function describeOffer(offer, metadata) {
  const issuerNames = byLanguage(metadata && metadata.display, "name");
  const config =
    metadata && metadata.credential_configurations_supported
      ? metadata.credential_configurations_supported[offer.credential_configuration_ids[0]]
      : null;
  const display = config && (config.credential_metadata || {}).display;
  return {
    issuerName: issuerNames.ja || Object.values(issuerNames)[0] || offer.credential_issuer,
    issuerNames,
    typeNames: byLanguage(display, "name"),
    vct: config ? config.vct : null,
  };
}

function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return hex(crypto.getRandomValues(new Uint8Array(16)));
}

/** The wallet's record of a received SD-JWT VC (see store.js). */
export function makeRecord(sdJwt, { keyId, issuerName, issuerNames = null, docType }) {
  const { jwt, payload, disclosures } = parse(sdJwt);
  const leaf = new Uint8Array(33);
  leaf[0] = 0x00;
  leaf.set(sha256(utf8(jwt)), 1);
  const leafHex = hex(sha256(leaf));
  const listed = new Set(Array.isArray(payload._sd) ? payload._sd : []);
  const byDigest = new Map(disclosures.map((d) => [d.digest, d]));
  const plain = {};
  for (const [k, v] of Object.entries(payload)) if (!REGISTERED.has(k)) plain[k] = v;
  const ref = payload.status && payload.status.status_list;
  const vctType = /\/vct\/([^/]+)\/\d+$/.exec(payload.vct || "");
  return {
    id: newId(),
    sdJwt,
    docType: docType || (vctType ? vctType[1] : "unknown"),
    vct: payload.vct,
    issuer: payload.iss,
    issuerName: issuerName || payload.iss,
    issuerNames: issuerNames || {},
    issuedAt: typeof payload.iat === "number" ? payload.iat * 1000 : null,
    expiresAt: typeof payload.exp === "number" ? payload.exp * 1000 : null,
    // Values as the certificate says them: age_equal_or_over's members, each a
    // disclosure of its own, in place (sdjwt.js present() brings them along).
    claims: disclosures
      .filter((d) => d.name !== null && listed.has(d.digest))
      .map((d) => ({ name: d.name, value: resolveValue(d.value, byDigest), disclosure: d.raw })),
    plain,
    status: ref && typeof ref.uri === "string" ? { uri: ref.uri, idx: ref.idx } : null,
    statusValue: null,
    statusCheckedAt: null,
    keyId,
    leafHex,
    evidenceUrl: `${payload.iss}/oid4vci/evidence/${leafHex}`,
    evidence: null,
    typeMetadata: null,
    receivedAt: Date.now(),
  };
}

/** A `c_nonce` from the issuer's Nonce Endpoint (OpenID4VCI 1.0 §7). */
async function freshNonce(metadata) {
  if (typeof metadata.nonce_endpoint !== "string") throw issuerError(null, "no nonce_endpoint");
  const fresh = await call(metadata.nonce_endpoint, { method: "POST" });
  const nonce = fresh.body && fresh.body.c_nonce;
  if (!fresh.response.ok || typeof nonce !== "string" || !nonce) {
    throw issuerError(fresh.body, fresh.response.status);
  }
  return nonce;
}

/**
 * Exchange the offer and the resident's 確認番号 for a credential bound to a new key;
 * store it and resolve to its record. `onStep(name)` reports "metadata", "token",
 * "key", "credential", "signature", "type", "saved". Rejects with ReceiveError.
 */
export async function receiveCredential(offer, txCode, { onStep = () => {} } = {}) {
  const issuer = offer.credential_issuer;
  const configuration = offer.credential_configuration_ids[0];
  onStep("metadata");
  const metadata = await issuerMetadata(issuer);
  const about = describeOffer(offer, metadata);

  onStep("token");
  const form = new URLSearchParams({
    grant_type: PRE_AUTHORIZED,
    "pre-authorized_code": offer.code,
    tx_code: txCode,
  });
  const token = await call(metadata.token_endpoint || `${issuer}/oid4vci/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: form.toString(),
  });
  if (!token.response.ok || !token.body || !token.body.access_token) {
    throw issuerError(token.body, token.response.status);
  }
  const accessToken = token.body.access_token;
  let nonce = await freshNonce(metadata);

  onStep("key");
  const key = await createHolderKey();
  try {
    onStep("credential");
    let answer = null;
    for (let attempt = 0; attempt < 2; attempt++) {
      const proof = await signJwt(
        key.id,
        { alg: "ES256", typ: "openid4vci-proof+jwt", jwk: key.publicJwk },
        { aud: issuer, iat: Math.floor(Date.now() / 1000), nonce },
      );
      answer = await call(metadata.credential_endpoint || `${issuer}/oid4vci/credential`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${accessToken}` },
        body: JSON.stringify({
          credential_configuration_id: configuration,
          proof: { proof_type: "jwt", jwt: proof },
        }),
      });
      // A stale nonce: ask the nonce endpoint again and try once more.
      if (attempt === 0 && answer.body && answer.body.error === "invalid_nonce") {
        nonce = await freshNonce(metadata);
        continue;
      }
      break;
    }
    const items = answer.body && answer.body.credentials;
    const sdJwt = Array.isArray(items) && items[0] ? items[0].credential : answer.body && answer.body.credential;
    if (!answer.response.ok || typeof sdJwt !== "string") {
      throw issuerError(answer.body, answer.response.status);
    }
    const record = makeRecord(sdJwt, {
      keyId: key.id,
      issuerName: about.issuerName,
      issuerNames: about.issuerNames,
      docType: configuration,
    });
    const cnf = parse(sdJwt).payload.cnf;
    onStep("signature");
    try {
      // The issuer's signature, with a key it publishes (/.well-known/jwt-vc-issuer, by kid).
      await verifyIssuerJws(parse(sdJwt).jwt, issuer, "dc+sd-jwt");
    } catch (e) {
      throw new ReceiveError(
        "issuer",
        `受け取った証明書の署名を、発行元が公開している鍵で確かめられません（${e.message}）`,
        `the credential's signature does not verify with the keys the issuer publishes (${e.message})`,
      );
    }
    if (record.issuer !== issuer) {
      throw new ReceiveError(
        "issuer",
        "受け取った証明書の発行元が、QRコードの発行元と一致しません",
        "the credential's issuer is not the one that offered it",
      );
    }
    if (!cnf || !cnf.jwk || cnf.jwk.x !== key.publicJwk.x || cnf.jwk.y !== key.publicJwk.y) {
      throw new ReceiveError(
        "issuer",
        "受け取った証明書がこの端末の鍵に結び付いていません",
        "the credential received is not bound to this phone's key",
      );
    }
    onStep("type");
    record.typeMetadata = await typeMetadata(record);
    await putCredential(record);
    onStep("saved");
    return record;
  } catch (e) {
    await deleteKey(key.id).catch(() => {});
    throw e;
  }
}

/**
 * Fetch the anchor evidence of a record that has none yet; store it when found.
 * Resolves to the (updated) record, or null when the batch is not anchored yet (or the
 * issuer cannot be reached): try again later.
 */
export async function fetchEvidence(record) {
  if (record.evidence || !record.evidenceUrl) return record;
  let response;
  try {
    response = await fetch(record.evidenceUrl, { cache: "no-store", credentials: "omit" });
  } catch {
    return null;
  }
  if (!response.ok) return null; // 404 not_anchored_yet: later
  let evidence;
  try {
    evidence = await response.json();
  } catch {
    return null;
  }
  if (!evidence || !evidence.receipt || !evidence.root) return null;
  const latest = await getCredential(record.id);
  if (!latest) return null; // deleted meanwhile: do not bring it back
  const updated = { ...latest, evidence };
  await putCredential(updated);
  return updated;
}

async function matchesIntegrity(bytes, integrity) {
  // Subresource Integrity: "sha256-<base64>" and others, one of which must match.
  for (const item of String(integrity).trim().split(/\s+/)) {
    const m = /^(sha256|sha384|sha512)-([A-Za-z0-9+/_-]+={0,2})$/.exec(item);
    if (!m) continue;
    const want = b64uDecode(m[2]);
    const got = new Uint8Array(await crypto.subtle.digest(INTEGRITY[m[1]], bytes));
    if (got.length === want.length && got.every((b, i) => b === want[i])) return true;
  }
  return false;
}

/**
 * The SD-JWT VC type metadata that `record.vct` resolves to (checked against the
 * credential's `vct#integrity` when it has one), or null when it cannot be had or is
 * not that type's: the wallet's built-in types (types.js) stand in then.
 */
export async function typeMetadata(record) {
  const vct = record.vct;
  if (typeof vct !== "string" || !/^https?:\/\//.test(vct)) return null;
  try {
    const response = await fetch(vct, { cache: "no-cache", credentials: "omit" });
    if (!response.ok) return null;
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (bytes.length > MAX_TYPE_METADATA) return null;
    const integrity = parse(record.sdJwt).payload["vct#integrity"];
    if (integrity !== undefined && !(await matchesIntegrity(bytes, integrity))) return null;
    const doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    if (!doc || doc.vct !== vct || !Array.isArray(doc.claims) || !Array.isArray(doc.display)) return null;
    return doc;
  } catch {
    return null; // offline, not JSON: later
  }
}

/**
 * Fetch the type metadata of a record that has none yet (received offline, or from
 * an older wallet); store it when found. Resolves to the updated record, else null.
 */
export async function fetchTypeMetadata(record) {
  if (record.typeMetadata) return record;
  const found = await typeMetadata(record);
  if (!found) return null;
  const latest = await getCredential(record.id);
  if (!latest) return null; // deleted meanwhile: do not bring it back
  const updated = { ...latest, typeMetadata: found };
  await putCredential(updated);
  return updated;
}
