// Holder keys: P-256 ECDSA key pairs made by WebCrypto with extractable: false, kept
// as CryptoKey objects in IndexedDB ("keys"). The private key never leaves the
// browser's key store; the wallet only asks it to sign.
import { getKey, putKey } from "./store.js";

const ALG = { name: "ECDSA", namedCurve: "P-256" };
const SIGN = { name: "ECDSA", hash: "SHA-256" };
const encoder = new TextEncoder();

/** UTF-8 bytes of a string. */
export function utf8(text) {
  return encoder.encode(text);
}

/** base64url without padding of bytes (Uint8Array or ArrayBuffer). */
export function b64u(bytes) {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let s = "";
  for (let i = 0; i < view.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, view.subarray(i, i + 0x8000));
  }
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The bytes of base64url (or base64) text, padded or not. Throws on bad input. */
export function b64uDecode(text) {
  if (!/^[A-Za-z0-9_\-+/]*={0,2}$/.test(text)) throw new Error("not base64url");
  const plain = text.replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
  const binary = atob(plain + "===".slice((plain.length + 3) % 4));
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

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
  if (!rec) throw new Error("この証明書の鍵が見つかりません / the holder key is missing");
  return new Uint8Array(await crypto.subtle.sign(SIGN, rec.privateKey, dataBytes));
}

/** A compact JWS (ES256) of `header` and `payload` signed with the key `keyId`. */
export async function signJwt(keyId, header, payload) {
  const input = `${b64u(utf8(JSON.stringify(header)))}.${b64u(utf8(JSON.stringify(payload)))}`;
  return `${input}.${b64u(await signEs256(keyId, utf8(input)))}`;
}
