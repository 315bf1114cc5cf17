// A wallet built on the OpenWallet Foundation's libraries, nobody here wrote them:
// @openid4vc/openid4vp 0.4.6 resolves our verifier's OpenID4VP 1.0 request (fetching
// and verifying the signed request object, or reading it by value), @sd-jwt/sd-jwt-vc
// 0.19 presents the 住民票 with a key-binding JWT, jose does the cryptography, and the
// library creates and submits the answer (direct_post or direct_post.jwt).
//
//   node oid4vp_wallet.mjs INPUT.json   → prints one JSON object (what happened)
//
// INPUT: {link, credential, holderJwk (private), trustedCertPem, tamper, disclose?}
// tamper: "none" | "nonce" | "aud" | "extra" | "refuse" | "replay"
// Talks only to the URLs in the request (127.0.0.1 in the tests).
import { readFileSync } from "node:fs";
import { X509Certificate, createHash, createPrivateKey, randomBytes, sign } from "node:crypto";
import * as jose from "jose";
import { Openid4vpClient } from "@openid4vc/openid4vp";
import { setGlobalConfig } from "@openid4vc/utils";
import { SDJwtVcInstance } from "@sd-jwt/sd-jwt-vc";

setGlobalConfig({ allowInsecureUrls: true }); // the test verifier is http://127.0.0.1

const input = JSON.parse(readFileSync(process.argv[2], "utf8"));
const trusted = new X509Certificate(input.trustedCertPem || "").raw;

function hash(data, alg) {
  const name = { "sha-256": "sha256", "sha-384": "sha384", "sha-512": "sha512" }[alg] || "sha256";
  return new Uint8Array(createHash(name).update(data).digest());
}

function pem(b64) {
  return `-----BEGIN CERTIFICATE-----\n${b64.match(/.{1,64}/g).join("\n")}\n-----END CERTIFICATE-----`;
}

const callbacks = {
  hash,
  fetch: (url, init) => fetch(url, { ...init, redirect: "manual" }),
  getX509CertificateMetadata(certificate) {
    const cert = new X509Certificate(Buffer.from(certificate, "base64"));
    const names = (cert.subjectAltName || "").split(", ");
    return {
      sanDnsNames: names.filter((n) => n.startsWith("DNS:")).map((n) => n.slice(4)),
      sanUriNames: names.filter((n) => n.startsWith("URI:")).map((n) => n.slice(4)),
    };
  },
  async verifyJwt(signer, { compact }) {
    if (signer.method !== "x5c") return { verified: false };
    // The trust chain: this wallet trusts exactly the test's certificate (pinned).
    const leaf = Buffer.from(signer.x5c[0], "base64");
    if (!leaf.equals(trusted)) return { verified: false };
    const key = await jose.importX509(pem(signer.x5c[0]), signer.alg);
    try {
      await jose.compactVerify(compact, key, { algorithms: ["ES256"] });
    } catch {
      return { verified: false };
    }
    return { verified: true, signerJwk: await jose.exportJWK(key) };
  },
  async encryptJwe(encryptor, data) {
    const key = await jose.importJWK(encryptor.publicJwk, encryptor.alg);
    const header = { alg: encryptor.alg, enc: encryptor.enc, kid: encryptor.publicJwk.kid };
    if (encryptor.apu) header.apu = encryptor.apu;
    if (encryptor.apv) header.apv = encryptor.apv;
    const jwe = await new jose.CompactEncrypt(new TextEncoder().encode(data))
      .setProtectedHeader(header)
      .encrypt(key);
    return { jwe, encryptionJwk: encryptor.publicJwk };
  },
  decryptJwe() {
    throw new Error("not used");
  },
  signJwt() {
    throw new Error("not used");
  },
};

const client = new Openid4vpClient({ callbacks });

async function present(request, tamper) {
  // The claims the DCQL query asks for; "extra" discloses one more than asked.
  const query = request.dcql_query.credentials[0];
  const frame = {};
  const paths = (query.claims || []).map((c) => c.path);
  if (tamper === "extra") paths.push(["birthdate"], ["sex"]);
  for (const path of paths) {
    if (path.length === 1) frame[path[0]] = true;
    else frame[path[0]] = { ...(frame[path[0]] || {}), [path[1]]: true };
  }
  const holder = createPrivateKey({ key: input.holderJwk, format: "jwk" });
  const sdjwt = new SDJwtVcInstance({
    hasher: (data, alg) => hash(typeof data === "string" ? new TextEncoder().encode(data) : data, alg),
    saltGenerator: () => randomBytes(16).toString("base64url"),
    kbSignAlg: "ES256",
    // The signer signs "header.payload" itself: ES256 as raw r||s, base64url.
    kbSigner: (data) =>
      sign("sha256", Buffer.from(data), { key: holder, dsaEncoding: "ieee-p1363" }).toString(
        "base64url",
      ),
  });
  return sdjwt.present(input.credential, frame, {
    kb: {
      payload: {
        aud: tamper === "aud" ? "x509_san_dns:attacker.example" : request.client_id,
        nonce: tamper === "nonce" ? "not-the-request-nonce" : request.nonce,
        iat: Math.floor(Date.now() / 1000),
      },
    },
  });
}

async function answer(resolved, vpToken) {
  const request = resolved.authorizationRequestPayload;
  const jarm =
    request.response_mode === "direct_post.jwt"
      ? {
          encryption: { nonce: randomBytes(16).toString("base64url") },
          serverMetadata: {
            authorization_signing_alg_values_supported: ["ES256"],
            authorization_encryption_alg_values_supported: ["ECDH-ES"],
            authorization_encryption_enc_values_supported: ["A128GCM", "A256GCM"],
          },
        }
      : undefined;
  const created = await client.createOpenid4vpAuthorizationResponse({
    authorizationRequestPayload: request,
    authorizationResponsePayload: { vp_token: vpToken },
    jarm,
  });
  return created;
}

async function body(response) {
  const text = await response.text();
  try {
    return { status: response.status, body: JSON.parse(text) };
  } catch {
    return { status: response.status, body: text };
  }
}

async function main() {
  const parsed = client.parseOpenid4vpAuthorizationRequest({ authorizationRequest: input.link });
  const resolved = await client.resolveOpenId4vpAuthorizationRequest({
    authorizationRequestPayload: parsed.params,
  });
  const request = resolved.authorizationRequestPayload;
  const out = {
    parsed: parsed.type,
    client: { prefix: resolved.client.prefix, identifier: resolved.client.identifier },
    request: {
      client_id: request.client_id,
      response_mode: request.response_mode,
      response_uri: request.response_uri,
      dcql_query: request.dcql_query,
      client_metadata: request.client_metadata,
    },
    signed: Boolean(resolved.jar),
    responses: [],
  };
  if (input.tamper === "refuse") {
    // The resident said no: an error response, form-encoded, unencrypted (§8.3.1).
    const form = new URLSearchParams({
      error: "access_denied",
      error_description: "the resident declined",
      state: request.state,
    });
    const response = await fetch(request.response_uri, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: form.toString(),
    });
    out.responses.push(await body(response));
    return out;
  }
  const presentation = await present(request, input.tamper);
  const vpToken = { [request.dcql_query.credentials[0].id]: [presentation] };
  const created = await answer(resolved, vpToken);
  out.encrypted = Boolean(created.jarm);
  const times = input.tamper === "replay" ? 2 : 1;
  for (let i = 0; i < times; i++) {
    const submitted = await client.submitOpenid4vpAuthorizationResponse({
      authorizationRequestPayload: request,
      authorizationResponsePayload: created.authorizationResponsePayload,
      jarm: created.jarm ? { responseJwt: created.jarm.responseJwt } : undefined,
    });
    out.responses.push(await body(submitted.response));
  }
  return out;
}

main()
  .then((out) => process.stdout.write(JSON.stringify(out) + "\n"))
  .catch((e) => {
    const detail = e && e.errorResponse ? e.errorResponse : undefined;
    process.stdout.write(JSON.stringify({ error: String(e && e.message), detail }) + "\n");
    process.exitCode = 3;
  });
