// A small OpenID4VP 1.0 verifier built on libraries nobody here wrote: the OpenWallet
// Foundation's @openid4vc/openid4vp 0.4.6 makes the authorization request (signed
// request object for x509_san_dns, by value for redirect_uri) and parses the answer
// (direct_post, or direct_post.jwt decrypted with jose), and @sd-jwt/sd-jwt-vc 0.19
// verifies each presentation: the issuer's signature, the key-binding JWT against the
// request's nonce, its aud against the full client_id, and its sd_hash.
//
// Run by tests/browser/test_wallet_oid4vp_interop.py: `node oid4vp_verifier.mjs
// <config.json>` with {host, issuer_jwks: [JWK], certificates: {name: {x5c: [base64
// DER], key_pem: PKCS#8}}}. It listens on 127.0.0.1 (a free port, printed as the first
// line "listening <port>") and serves, every answer with CORS open to any origin (the
// wallet is a web page on another origin):
//   POST /requests  {prefix: "x509_san_dns"|"redirect_uri", mode, certificate, claims:
//                    [path], vct, by_value, request_uri_method, enc, redirect}
//                   -> {id, link}
//   GET|POST /request/<id>   the signed request object (application/oauth-authz-req+jwt)
//   POST /response/<id>      the wallet's answer (form-encoded)
//   GET /result/<id>         what arrived: {status: "waiting"|"verified"|"refused"|"failed", …}
import { createHash, randomBytes, verify as nodeVerify, createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import { createOpenid4vpAuthorizationRequest, parseOpenid4vpAuthorizationResponse } from "@openid4vc/openid4vp";
import { setGlobalConfig } from "@openid4vc/utils";
import { SDJwtVcInstance } from "@sd-jwt/sd-jwt-vc";
import { CompactSign, compactDecrypt, decodeProtectedHeader, exportJWK, generateKeyPair } from "jose";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
// Everything runs on this computer over http (127.0.0.1 / localhost), which the
// libraries accept only when told to.
setGlobalConfig({ allowInsecureUrls: true });
const HOST = config.host || "localhost";
const REGISTERED = new Set(["iss", "iat", "exp", "nbf", "vct", "cnf", "status", "sub", "vct#integrity"]);
const sessions = new Map();
let base = "";

const b64u = (bytes) => Buffer.from(bytes).toString("base64url");

function es256Verify(jwk, data, signature) {
  return nodeVerify("sha256", Buffer.from(data), { key: jwk, format: "jwk", dsaEncoding: "ieee-p1363" },
    Buffer.from(signature, "base64url"));
}

const sdjwt = new SDJwtVcInstance({
  hasher: (data, alg) => new Uint8Array(createHash(alg.replace("-", "").toLowerCase()).update(data).digest()),
  hashAlg: "sha-256",
  verifier: async (data, signature) => config.issuer_jwks.some((jwk) => es256Verify(jwk, data, signature)),
  kbVerifier: async (data, signature, payload) => Boolean(payload.cnf && payload.cnf.jwk) &&
    es256Verify(payload.cnf.jwk, data, signature),
});

async function signJar(certificate, { header, payload }) {
  const key = createPrivateKey(certificate.key_pem);
  const jwt = await new CompactSign(Buffer.from(JSON.stringify(payload)))
    .setProtectedHeader(header)
    .sign(key);
  return { jwt, signerJwk: await exportJWK(key) };
}

async function newRequest(options) {
  const id = b64u(randomBytes(12));
  const responseUri = `${base}/response/${id}`;
  const encryption = await generateKeyPair("ECDH-ES", { crv: "P-256", extractable: true });
  const publicJwk = { ...(await exportJWK(encryption.publicKey)), kid: `enc-${id}`, use: "enc", alg: "ECDH-ES" };
  const clientId = options.prefix === "x509_san_dns" ? `x509_san_dns:${options.dns_name || HOST}` : `redirect_uri:${responseUri}`;
  const clientMetadata = {
    vp_formats_supported: { "dc+sd-jwt": { "sd-jwt_alg_values": ["ES256"], "kb-jwt_alg_values": ["ES256"] } },
  };
  if (options.mode === "direct_post.jwt") {
    clientMetadata.jwks = { keys: [publicJwk] };
    if (options.enc) clientMetadata.encrypted_response_enc_values_supported = [options.enc];
  }
  if (options.client_name) clientMetadata.client_name = options.client_name;
  const payload = {
    response_type: "vp_token",
    client_id: clientId,
    response_uri: responseUri,
    response_mode: options.mode,
    nonce: b64u(randomBytes(18)),
    state: b64u(randomBytes(12)),
    client_metadata: clientMetadata,
    dcql_query: {
      credentials: [{
        id: "juminhyo",
        format: "dc+sd-jwt",
        meta: { vct_values: [options.vct] },
        claims: options.claims.map((path) => ({ path })),
      }],
    },
  };
  const session = { id, payload, options, encryption, result: { status: "waiting" } };
  sessions.set(id, session);
  let link;
  if (options.prefix === "x509_san_dns" && !options.by_value) {
    const made = await createOpenid4vpAuthorizationRequest({
      authorizationRequestPayload: payload,
      jar: {
        requestUri: `${base}/request/${id}`,
        jwtSigner: { method: "x5c", alg: "ES256", x5c: config.certificates[options.certificate].x5c },
        expiresInSeconds: 300,
        additionalJwtPayload: { aud: "https://self-issued.me/v2" }, // OpenID4VP 1.0 §5.8, static discovery
      },
      callbacks: { signJwt: (signer, jwt) => signJar(config.certificates[options.certificate], jwt) },
    });
    link = made.authorizationRequest;
    if (options.request_uri_method) link += `&request_uri_method=${options.request_uri_method}`;
  } else {
    // Unsigned, by value (redirect_uri:, or a deliberately unsigned x509_san_dns request).
    const made = await createOpenid4vpAuthorizationRequest({ authorizationRequestPayload: payload, callbacks: {} });
    link = made.authorizationRequest;
  }
  return { id, link, nonce: payload.nonce, client_id: clientId };
}

async function requestObject(session, walletNonce) {
  const certificate = config.certificates[session.options.certificate];
  const payload = walletNonce ? { ...session.payload, wallet_nonce: walletNonce } : session.payload;
  const made = await createOpenid4vpAuthorizationRequest({
    authorizationRequestPayload: payload,
    wallet: walletNonce ? { expectedNonce: walletNonce } : undefined,
    jar: {
      requestUri: `${base}/request/${session.id}`,
      jwtSigner: { method: "x5c", alg: "ES256", x5c: certificate.x5c },
      expiresInSeconds: 300,
      additionalJwtPayload: { aud: "https://self-issued.me/v2" },
    },
    callbacks: { signJwt: (signer, jwt) => signJar(certificate, jwt) },
  });
  session.fetched = (session.fetched || 0) + 1;
  session.walletNonce = walletNonce || null;
  return made.jar.authorizationRequestJwt;
}

function disclosedClaims(payload) {
  return Object.fromEntries(Object.entries(payload).filter(([k]) => !REGISTERED.has(k) && !k.startsWith("_")));
}

async function receive(session, form) {
  const { payload } = session;
  let peek = form;
  if (form.response) {
    // Peek at the encrypted payload for a refusal (error=…), which carries no vp_token.
    const header = decodeProtectedHeader(form.response);
    const { plaintext } = await compactDecrypt(form.response, session.encryption.privateKey);
    peek = JSON.parse(Buffer.from(plaintext).toString("utf8"));
    session.jwe = { alg: header.alg, enc: header.enc, kid: header.kid };
  }
  if (peek.error) {
    if (peek.state !== payload.state) throw new Error("the refusal's state is not the request's");
    return { status: "refused", error: peek.error, encrypted: Boolean(form.response), jwe: session.jwe || null };
  }
  const parsed = await parseOpenid4vpAuthorizationResponse({
    authorizationResponse: form,
    authorizationRequestPayload: payload,
    callbacks: {
      decryptJwe: async (jwe) => {
        const { plaintext } = await compactDecrypt(jwe, session.encryption.privateKey);
        return { decrypted: true, decryptionJwk: await exportJWK(session.encryption.publicKey), payload: Buffer.from(plaintext).toString("utf8") };
      },
      verifyJwt: async () => ({ verified: false }),
    },
  });
  if (parsed.type !== "dcql") throw new Error(`not a DCQL answer: ${parsed.type}`);
  if (parsed.authorizationResponsePayload.state !== payload.state) throw new Error("state does not match");
  const presentations = {};
  for (const [queryId, entries] of Object.entries(parsed.dcql.presentations)) {
    const out = [];
    for (const entry of entries) {
      const text = typeof entry === "string" ? entry : entry.presentation;
      const verified = await sdjwt.verify(text, { keyBindingNonce: parsed.expectedNonce });
      if (!verified.kb) throw new Error("no key-binding JWT");
      if (verified.kb.payload.aud !== payload.client_id) {
        throw new Error(`KB-JWT aud ${verified.kb.payload.aud} is not the client_id ${payload.client_id}`);
      }
      if (Math.abs(verified.kb.payload.iat - Date.now() / 1000) > 300) throw new Error("KB-JWT iat is not fresh");
      out.push({ claims: disclosedClaims(verified.payload), vct: verified.payload.vct, kb_aud: verified.kb.payload.aud });
    }
    presentations[queryId] = out;
  }
  return {
    status: "verified",
    encrypted: Boolean(form.response),
    jwe: session.jwe || null,
    presentations,
    wallet_nonce: session.walletNonce || null,
    fetched: session.fetched || 0,
  };
}

function send(res, status, body, type = "application/json") {
  res.writeHead(status, {
    "Content-Type": type,
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Content-Type, Accept",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Cache-Control": "no-store",
  });
  res.end(typeof body === "string" ? body : JSON.stringify(body));
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 1 << 20) throw new Error("body too large");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, base);
    const [, route, id] = url.pathname.split("/");
    if (req.method === "OPTIONS") return send(res, 204, "");
    if (route === "requests" && req.method === "POST") return send(res, 200, await newRequest(JSON.parse(await readBody(req))));
    const session = sessions.get(id);
    if (!session) return send(res, 404, { error: "unknown request" });
    if (route === "request") {
      const form = req.method === "POST" ? Object.fromEntries(new URLSearchParams(await readBody(req))) : {};
      return send(res, 200, await requestObject(session, form.wallet_nonce), "application/oauth-authz-req+jwt");
    }
    if (route === "response" && req.method === "POST") {
      if (session.result.status !== "waiting") return send(res, 400, { error: "invalid_request", error_description: "already answered" });
      const form = Object.fromEntries(new URLSearchParams(await readBody(req)));
      try {
        session.result = await receive(session, form);
      } catch (e) {
        session.result = { status: "failed", error: String(e && e.message ? e.message : e) };
        return send(res, 400, { error: "invalid_request", error_description: session.result.error });
      }
      return send(res, 200, session.options.redirect ? { redirect_uri: `${base}/done/${id}` } : {});
    }
    if (route === "done") return send(res, 200, `<!doctype html><title>done</title><p id="done">${session.result.status}</p>`, "text/html");
    if (route === "result") return send(res, 200, session.result);
    return send(res, 404, { error: "not found" });
  } catch (e) {
    return send(res, 500, { error: String(e && e.stack ? e.stack : e) });
  }
});

server.listen(0, "127.0.0.1", () => {
  const { port } = server.address();
  base = `http://${HOST}:${port}`;
  console.log(`listening ${port}`);
});
