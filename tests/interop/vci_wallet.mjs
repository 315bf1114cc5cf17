// A wallet nobody here wrote receives from our issuer: the OpenWallet Foundation's
// @openid4vc/openid4vci 0.4.6 (+ @openid4vc/oauth2) walks the pre-authorized code flow
// with a tx_code from a credential offer (by reference or by value), and
// @sd-jwt/sd-jwt-vc 0.19 verifies the credential received with the key the issuer
// publishes (/.well-known/jwt-vc-issuer) and resolves its type metadata (vct).
//
// Run by tests/issuer/test_oid4vci_interop.py:
//   node tests/interop/vci_wallet.mjs '{"offer": "openid-credential-offer://…", "txCode": "123456"}'
// Prints one JSON line: {"ok": true, …what the wallet got…} or {"ok": false, "stage",
// "error": {"name", "message", "response"}} where `response` is the issuer's error
// document when it sent one. Talks to 127.0.0.1 only (plain http is allowed for that).
import { createHash, randomBytes } from "node:crypto";

import { Openid4vciClient } from "@openid4vc/openid4vci";
import { clientAuthenticationNone } from "@openid4vc/oauth2";
import { setGlobalConfig } from "@openid4vc/utils";
import { SDJwtVcInstance } from "@sd-jwt/sd-jwt-vc";
import * as jose from "jose";

const input = JSON.parse(process.argv[2] || "{}");
if (typeof input.offer !== "string" || typeof input.txCode !== "string") {
  throw new Error("usage: vci_wallet.mjs '{\"offer\": …, \"txCode\": …}'");
}
setGlobalConfig({ allowInsecureUrls: true }); // the test's issuer is http://127.0.0.1:…

const HASHES = { "sha-256": "sha256", "SHA-256": "sha256", sha256: "sha256" };

function hash(data, alg) {
  const name = HASHES[alg];
  if (!name) throw new Error(`unsupported hash ${alg}`);
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : Buffer.from(data);
  return new Uint8Array(createHash(name).update(bytes).digest());
}

const holder = await jose.generateKeyPair("ES256", { extractable: true });
const holderJwk = await jose.exportJWK(holder.publicKey);

async function signJwt(signer, { header, payload }) {
  if (signer.method !== "jwk") throw new Error(`this wallet signs with a jwk, not ${signer.method}`);
  const jwt = await new jose.CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader(header)
    .sign(holder.privateKey);
  return { jwt, signerJwk: signer.publicJwk };
}

const client = new Openid4vciClient({
  callbacks: {
    hash,
    generateRandom: (n) => new Uint8Array(randomBytes(n)),
    signJwt,
    clientAuthentication: clientAuthenticationNone({ clientId: "interop-wallet" }),
    fetch,
  },
});

function report(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

async function describe(stage, e) {
  let response = e.errorResponse ?? null;
  if (!response && e.response && typeof e.response.clone === "function") {
    try {
      response = await e.response.clone().json();
    } catch {
      response = null;
    }
  }
  return {
    ok: false,
    stage,
    error: { name: e.constructor?.name ?? "Error", message: String(e.message), response },
  };
}

let stage = "offer";
try {
  const offer = await client.resolveCredentialOffer(input.offer);
  stage = "metadata";
  const issuerMetadata = await client.resolveIssuerMetadata(offer.credential_issuer);
  const configurationId = offer.credential_configuration_ids[0];
  stage = "token";
  const { accessTokenResponse } = await client.retrievePreAuthorizedCodeAccessTokenFromOffer({
    credentialOffer: offer,
    issuerMetadata,
    txCode: input.txCode,
  });
  stage = "nonce";
  const { c_nonce: nonce } = await client.requestNonce({ issuerMetadata });
  stage = "proof";
  const { jwt: proof } = await client.createCredentialRequestJwtProof({
    issuerMetadata,
    credentialConfigurationId: configurationId,
    signer: { method: "jwk", alg: "ES256", publicJwk: holderJwk },
    nonce,
  });
  stage = "credential";
  const { credentialResponse } = await client.retrieveCredentials({
    issuerMetadata,
    accessToken: accessTokenResponse.access_token,
    credentialConfigurationId: configurationId,
    proofs: { jwt: [proof] },
  });
  const credential = credentialResponse.credentials[0].credential;

  // The issuer's keys as it publishes them for SD-JWT VC verifiers.
  stage = "issuer_keys";
  const issuer = offer.credential_issuer;
  const published = await (await fetch(`${issuer}/.well-known/jwt-vc-issuer`)).json();
  if (published.issuer !== issuer) throw new Error(`jwt-vc-issuer names ${published.issuer}`);
  const keys = jose.createLocalJWKSet(published.jwks);
  const verified = new Set();
  const verifier = async (data, signature) => {
    // The header names the key (kid); jose picks it from the published set.
    const { payload } = await jose.compactVerify(`${data}.${signature}`, keys, {
      algorithms: ["ES256"],
    });
    verified.add(JSON.parse(new TextDecoder().decode(payload)).iss ?? "");
    return true;
  };
  stage = "verify";
  const sdjwt = new SDJwtVcInstance({
    hasher: hash,
    hashAlg: "sha-256",
    verifier,
    statusVerifier: verifier,
    loadTypeMetadataFormat: true,
  });
  const result = await sdjwt.verify(credential);
  const type = result.typeMetadata?.mergedTypeMetadata ?? null;
  report({
    ok: true,
    offer,
    tokenResponse: Object.keys(accessTokenResponse).sort(),
    credentialIssuer: issuerMetadata.credentialIssuer.credential_issuer,
    configuration: configurationId,
    credential,
    holderJwk,
    signedBy: [...verified],
    payload: result.payload,
    header: result.header,
    typeMetadata: type && { vct: type.vct, name: type.name, claims: type.claims },
  });
} catch (e) {
  report(await describe(stage, e));
}
