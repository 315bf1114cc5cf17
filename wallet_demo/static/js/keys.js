// Holder keys: P-256 ECDSA key pairs made by WebCrypto with extractable: false, kept
// as CryptoKey objects in IndexedDB ("keys"). The private key never leaves the
// browser's key store; the wallet only asks it to sign.
import { b64u, utf8 } from "./b64.js";
import { Problem } from "./i18n.js";
import { getKey, putKey } from "./store.js";

const ALG = { name: "ECDSA", namedCurve: "P-256" };
const SIGN = { name: "ECDSA", hash: "SHA-256" };

/** RFC 7638 thumbprint (SHA-256, base64url) of an EC public JWK. */
export async function jwkThumbprint(jwk) {
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
  return b64u(await crypto.subtle.digest("SHA-256", utf8(canonical)));
}

/** A new holder key, stored: `{id, publicJwk}` (id: the JWK thumbprint). */
export async function createHolderKey() {
  const pair = await crypto.subtle.generateKey(ALG, false, ["sign", "verify"]);
  const full = await crypto.subtle.exportKey("jwk", pair.publicKey);
  const publicJwk = { kty: full.kty, crv: full.crv, x: full.x, y: full.y };
  const id = await jwkThumbprint(publicJwk);
  await putKey({
    id,
    privateKey: pair.privateKey,
    publicKey: pair.publicKey,
    publicJwk,
    createdAt: Date.now(),
  });
  return { id, publicJwk };
}

/** ES256 signature (raw r||s, 64 bytes) of `dataBytes` with the stored key `keyId`. */
export async function signEs256(keyId, dataBytes) {
  const rec = await getKey(keyId);
  if (!rec) throw new Problem("この証明書の鍵が見つかりません", "the holder key is missing");
  return new Uint8Array(await crypto.subtle.sign(SIGN, rec.privateKey, dataBytes));
}

/** A compact JWS (ES256) of `header` and `payload` signed with the key `keyId`. */
export async function signJwt(keyId, header, payload) {
  const input = `${b64u(utf8(JSON.stringify(header)))}.${b64u(utf8(JSON.stringify(payload)))}`;
  return `${input}.${b64u(await signEs256(keyId, utf8(input)))}`;
}
