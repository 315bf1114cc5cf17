// OpenID4VP 1.0 on the wallet's side: read an authorization request (an openid4vp://
// link, by value or by reference), check who sent it (client identifier prefixes
// `redirect_uri`, unsigned, and `x509_san_dns`, a request object signed with the key of
// the x5c leaf certificate), and send the answer or the refusal to its response_uri
// (response modes direct_post and direct_post.jwt). Strict: anything else is refused
// with a message the resident can read.
import { b64u, b64uDecode, b64uJson } from "./b64.js";
import { readQuery } from "./dcql.js";
import { Problem } from "./i18n.js";
import { SUPPORTED_ENC, encryptJwe, importSpki, verifyEs256 } from "./jose.js";
import { parseCertificate } from "./x509.js";

export const SCHEMES = ["openid4vp:", "haip:", "eudi-openid4vp:"];
const REQUEST_TYP = "oauth-authz-req+jwt";
const MAX_REQUEST = 64 * 1024;
const SKEW = 300; // seconds of clock difference tolerated on iat / exp
const WALLET_METADATA = {
  vp_formats_supported: { "dc+sd-jwt": { "sd-jwt_alg_values": ["ES256"], "kb-jwt_alg_values": ["ES256"] } },
  request_object_signing_alg_values_supported: ["ES256"],
  client_id_prefixes_supported: ["redirect_uri", "x509_san_dns"],
  response_modes_supported: ["direct_post", "direct_post.jwt"],
};

function refuse(ja, en) {
  return new Problem(ja, en);
}

function malformed(en) {
  return refuse(`提示の依頼が正しくありません（${en}）`, `the request is malformed (${en})`);
}

/** Whether `text` looks like an OpenID4VP authorization request link. */
export function isRequestLink(text) {
  const value = String(text || "").trim();
  if (SCHEMES.some((s) => value.toLowerCase().startsWith(s))) return true;
  try {
    const url = new URL(value);
    return url.searchParams.has("client_id") && (url.searchParams.has("request_uri") ||
      url.searchParams.has("request") || url.searchParams.has("response_type"));
  } catch {
    return false;
  }
}

/** The query parameters of a request link (openid4vp://?…, https://wallet/?…, or this wallet's /?request=…). */
export function linkParams(text) {
  const value = String(text || "").trim();
  if (value.length > MAX_REQUEST) throw malformed("too long");
  let url;
  try {
    url = new URL(value);
  } catch {
    throw refuse("提示の依頼（openid4vp://…）ではありません", "this is not a presentation request (openid4vp://…)");
  }
  const inner = url.searchParams.get("request");
  if (inner && isRequestLink(inner) && !url.searchParams.has("client_id")) return linkParams(inner);
  if (!url.searchParams.has("client_id")) throw malformed("client_id is missing");
  return url.searchParams;
}

function loopback(url) {
  return ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname);
}

function endpoint(value, what) {
  let url;
  try {
    url = new URL(value);
  } catch {
    throw malformed(`${what} is not a URL`);
  }
  // https, or http to this computer (the demo and the tests run on 127.0.0.1)
  if (!(url.protocol === "https:" || (url.protocol === "http:" && loopback(url)))) {
    throw malformed(`${what} must be an https URL`);
  }
  return url;
}

async function fetchRequestObject(params) {
  const uri = endpoint(params.get("request_uri"), "request_uri");
  const method = params.get("request_uri_method");
  if (method !== null && method !== "get" && method !== "post") {
    throw malformed(`request_uri_method ${method} is neither get nor post`);
  }
  const init = { headers: { Accept: "application/oauth-authz-req+jwt" }, cache: "no-store", credentials: "omit", redirect: "error" };
  let walletNonce = null;
  if (method === "post") {
    walletNonce = b64u(crypto.getRandomValues(new Uint8Array(16)));
    init.method = "POST";
    init.headers["Content-Type"] = "application/x-www-form-urlencoded";
    init.body = new URLSearchParams({ wallet_metadata: JSON.stringify(WALLET_METADATA), wallet_nonce: walletNonce }).toString();
  }
  let response;
  try {
    response = await fetch(uri.href, init);
  } catch {
    throw refuse(
      `依頼元（${uri.host}）から依頼の内容を取得できません。依頼元がこのウォレットからの取得を許可していない（CORS）か、接続できません`,
      `cannot fetch the request from ${uri.host} (it does not allow this wallet to read it — CORS — or it cannot be reached)`,
    );
  }
  if (!response.ok) throw refuse(`依頼元が依頼の内容を返しませんでした（${response.status}）`, `the verifier did not return the request (${response.status})`);
  const text = (await response.text()).trim();
  if (text.length > MAX_REQUEST) throw malformed("the request object is too large");
  return { jwt: text, walletNonce };
}

function jwtParts(jwt) {
  const parts = jwt.split(".");
  if (parts.length === 5) throw malformed("an encrypted request object is not supported");
  if (parts.length !== 3) throw malformed("the request object is not a compact JWT");
  try {
    return { header: b64uJson(parts[0]), payload: b64uJson(parts[1]) };
  } catch {
    throw malformed("the request object is not base64url JSON");
  }
}

/**
 * Check a signed request object of an `x509_san_dns` client: ES256 by the x5c leaf's
 * P-256 key, typ oauth-authz-req+jwt, the leaf's dNSName SAN equal to `dnsName`, the
 * certificate valid at `now`. Returns `{payload, certificate: {dnsName, selfIssued,
 * notAfter, trusted: false}}`; throws Problem.
 */
export async function verifyX509Request(jwt, dnsName, now) {
  const { header } = jwtParts(jwt);
  if (!header || header.alg === "none" || header.alg !== "ES256") {
    throw refuse("署名のない、または対応していない方式で署名された依頼は受け付けません",
      `a request signed with ${JSON.stringify(header && header.alg)} is not accepted (ES256 only)`);
  }
  if (header.typ !== REQUEST_TYP) {
    throw malformed(`typ must be ${REQUEST_TYP}, not ${JSON.stringify(header.typ)}`);
  }
  if (!Array.isArray(header.x5c) || !header.x5c.length || typeof header.x5c[0] !== "string") {
    throw malformed("the signed request has no x5c certificate");
  }
  let cert;
  try {
    cert = parseCertificate(b64uDecode(header.x5c[0]));
  } catch (e) {
    throw malformed(`x5c: ${e.message}`);
  }
  if (!cert.p256) throw malformed("the certificate's key is not a P-256 key");
  const seconds = now / 1000;
  if (cert.notBefore / 1000 > seconds + SKEW || cert.notAfter / 1000 < seconds - SKEW) {
    throw refuse("依頼元の証明書が有効期間外です", "the verifier's certificate is outside its validity period");
  }
  if (!cert.dnsNames.includes(dnsName)) {
    throw refuse(
      `依頼元の証明書が「${dnsName}」のものではありません（証明書の名前: ${cert.dnsNames.join(", ") || "なし"}）`,
      `the verifier's certificate is not for ${dnsName} (its names: ${cert.dnsNames.join(", ") || "none"})`,
    );
  }
  let verified;
  try {
    verified = await verifyEs256(jwt, await importSpki(cert.spki));
  } catch (e) {
    throw refuse("依頼の署名を確認できません", `the request's signature does not verify (${e.message})`);
  }
  return {
    payload: verified.payload,
    certificate: { dnsName, selfIssued: cert.selfIssued, notAfter: cert.notAfter, trusted: false },
  };
}

function jsonParam(value, what) {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "object") return value;
  try {
    return JSON.parse(value);
  } catch {
    throw malformed(`${what} is not JSON`);
  }
}

function encryptionOf(metadata) {
  const keys = metadata && metadata.jwks && Array.isArray(metadata.jwks.keys) ? metadata.jwks.keys : [];
  const jwk = keys.find((k) => k && (k.use === undefined || k.use === "enc") && k.kty === "EC" &&
    k.crv === "P-256" && (k.alg === undefined || k.alg === "ECDH-ES"));
  if (!jwk) throw malformed("direct_post.jwt without a P-256 ECDH-ES key in client_metadata.jwks");
  const offered = metadata.encrypted_response_enc_values_supported;
  const enc = offered === undefined ? "A128GCM"
    : Array.isArray(offered) ? offered.find((e) => SUPPORTED_ENC.includes(e)) : undefined;
  if (!enc) throw malformed(`none of the content encryptions ${JSON.stringify(offered)} is supported (A128GCM, A256GCM)`);
  return { jwk, enc };
}

/**
 * Read the request that `text` (a link) carries, fetching and checking its request
 * object. Resolves to `{clientId, prefix ("redirect_uri" | "x509_san_dns"),
 * certificate|null, responseUri, responseMode, nonce, state, query (see
 * dcql.readQuery), encryption|null}`; rejects with Problem.
 */
export async function readRequest(text, { now = Date.now() } = {}) {
  const params = linkParams(text);
  const clientId = params.get("client_id");
  const colon = clientId.indexOf(":");
  const prefix = colon > 0 ? clientId.slice(0, colon) : "";
  const original = colon > 0 ? clientId.slice(colon + 1) : clientId;
  if (prefix !== "redirect_uri" && prefix !== "x509_san_dns") {
    throw refuse(
      `この依頼元の種類（${prefix || clientId}）には対応していません（redirect_uri と x509_san_dns のみ）`,
      `the client identifier ${JSON.stringify(clientId)} is not supported (redirect_uri: and x509_san_dns: only)`,
    );
  }
  let jwt = null;
  let walletNonce = null;
  if (params.has("request_uri")) {
    ({ jwt, walletNonce } = await fetchRequestObject(params));
  } else if (params.has("request")) {
    jwt = params.get("request");
  } else if (params.has("request_uri_method")) {
    throw malformed("request_uri_method without request_uri");
  }
  let req, certificate = null;
  if (prefix === "x509_san_dns") {
    if (!jwt) {
      throw refuse("証明書で名乗る依頼元（x509_san_dns）の依頼に署名がありません",
        "an x509_san_dns request must be a signed request object, and this one is not signed");
    }
    ({ payload: req, certificate } = await verifyX509Request(jwt, original, now));
    if (req.exp !== undefined && !(typeof req.exp === "number" && req.exp > now / 1000 - SKEW)) {
      throw refuse("依頼の有効期限が切れています", "the request has expired");
    }
    if (walletNonce && req.wallet_nonce !== walletNonce) throw malformed("wallet_nonce does not match");
  } else {
    if (jwt) {
      const { header } = jwtParts(jwt);
      throw refuse("redirect_uri の依頼元は署名付きの依頼を使えません",
        `a redirect_uri client cannot send a request object (alg ${JSON.stringify(header && header.alg)})`);
    }
    req = Object.fromEntries(params.entries());
  }
  if (req.client_id !== clientId) throw malformed("client_id of the request object differs from the link's");
  return checkRequest(req, { clientId, prefix, original, certificate });
}

function checkRequest(req, { clientId, prefix, original, certificate }) {
  if (req.response_type !== "vp_token") throw malformed(`response_type ${JSON.stringify(req.response_type)} is not vp_token`);
  const mode = req.response_mode;
  if (mode !== "direct_post" && mode !== "direct_post.jwt") {
    throw refuse(`応答の方式 ${mode || "（指定なし）"} には対応していません`, `response_mode ${JSON.stringify(mode)} is not supported (direct_post, direct_post.jwt)`);
  }
  if (req.redirect_uri !== undefined) throw malformed("redirect_uri must not be present with direct_post");
  if (typeof req.response_uri !== "string") throw malformed("response_uri is missing");
  const responseUri = endpoint(req.response_uri, "response_uri");
  if (prefix === "redirect_uri" && responseUri.href !== new URL(original).href) {
    throw malformed("the redirect_uri client identifier is not the response_uri");
  }
  if (prefix === "x509_san_dns" && responseUri.hostname !== original) {
    throw refuse(`送信先（${responseUri.host}）が依頼元（${original}）のものではありません`,
      `the response_uri (${responseUri.host}) is not on the verifier's name (${original})`);
  }
  if (typeof req.nonce !== "string" || !req.nonce) throw malformed("nonce is missing");
  if (req.state !== undefined && typeof req.state !== "string") throw malformed("state is not a string");
  if (req.scope !== undefined) throw malformed("scope is not supported: send a dcql_query");
  if (req.presentation_definition !== undefined || req.presentation_definition_uri !== undefined) {
    throw malformed("presentation_definition (a draft of OpenID4VP) is not supported: send a dcql_query");
  }
  if (req.transaction_data !== undefined) {
    throw refuse("取引データ（transaction_data）付きの依頼には対応していません", "requests with transaction_data are not supported");
  }
  const metadata = jsonParam(req.client_metadata, "client_metadata") || {};
  const kbAlgs = metadata.vp_formats_supported && metadata.vp_formats_supported["dc+sd-jwt"] &&
    metadata.vp_formats_supported["dc+sd-jwt"]["kb-jwt_alg_values"];
  if (Array.isArray(kbAlgs) && !kbAlgs.includes("ES256")) throw malformed("the verifier does not accept ES256 key binding");
  return {
    clientId,
    prefix,
    certificate,
    responseUri: responseUri.href,
    responseMode: mode,
    nonce: req.nonce,
    state: req.state === undefined ? null : req.state,
    query: readQuery(jsonParam(req.dcql_query, "dcql_query")),
    encryption: mode === "direct_post.jwt" ? encryptionOf(metadata) : null,
  };
}

async function post(request, fields) {
  const body = new URLSearchParams();
  if (request.encryption) {
    const { jwk, enc } = request.encryption;
    body.set("response", await encryptJwe(JSON.stringify(fields), jwk, enc));
  } else {
    for (const [k, v] of Object.entries(fields)) body.set(k, typeof v === "string" ? v : JSON.stringify(v));
  }
  let response;
  try {
    response = await fetch(request.responseUri, {
      method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: body.toString(), cache: "no-store", credentials: "omit", redirect: "error",
    });
  } catch {
    throw refuse("依頼元に送信できません（接続できないか、このウォレットからの送信を許可していません）",
      "cannot send to the verifier (unreachable, or it does not allow this wallet — CORS)");
  }
  let doc;
  try {
    doc = await response.json();
  } catch {
    doc = null;
  }
  if (!response.ok) {
    const why = doc && typeof doc.error_description === "string" ? doc.error_description : doc && doc.error;
    throw refuse(`依頼元が受け付けませんでした（${why || response.status}）`, `the verifier refused it (${why || response.status})`);
  }
  const next = doc && typeof doc.redirect_uri === "string" ? doc.redirect_uri : null;
  return { redirectUri: next && /^https?:\/\//.test(next) ? next : null };
}

/** Send `vpToken` ({credential query id: [presentation]}); resolves to {redirectUri|null}. */
export function sendAnswer(request, vpToken) {
  const fields = { vp_token: vpToken };
  if (request.state !== null) fields.state = request.state;
  return post(request, fields);
}

/** Tell the verifier the resident refused (error=access_denied); resolves to {redirectUri|null}. */
export function sendRefusal(request) {
  const fields = { error: "access_denied", error_description: "the End-User did not give consent" };
  if (request.state !== null) fields.state = request.state;
  return post(request, fields);
}

