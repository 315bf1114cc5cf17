// The JOSE pieces OpenID4VP needs beyond signing with a holder key (keys.js): checking
// an ES256 compact JWS with a given public key, and encrypting a response to the
// verifier's key as a compact JWE with ECDH-ES (direct key agreement, P-256) and
// AES-GCM (RFC 7516, RFC 7518 §4.6 with its Concat KDF), all with WebCrypto.
import { b64u, b64uDecode, b64uJson, utf8 } from "./b64.js";

const ECDSA = { name: "ECDSA", namedCurve: "P-256" };
const ENC_BITS = { A128GCM: 128, A256GCM: 256 };

/** The content encryption algorithms the wallet can encrypt with. */
export const SUPPORTED_ENC = Object.keys(ENC_BITS);

/**
 * The header and payload of a compact JWS signed with ES256 by `key` (a WebCrypto
 * public key). Throws Error when it is not one, or the signature does not verify.
 * The caller checks `typ` and the payload's claims.
 */
export async function verifyEs256(compact, key) {
  const parts = String(compact).split(".");
  if (parts.length !== 3) throw new Error("not a compact JWS");
  let header, payload;
  try {
    header = b64uJson(parts[0]);
    payload = b64uJson(parts[1]);
  } catch {
    throw new Error("the JWS header or payload is not base64url JSON");
  }
  if (!header || typeof header !== "object" || header.alg !== "ES256") {
    throw new Error(`signature algorithm ${JSON.stringify(header && header.alg)} is not accepted (ES256 only)`);
  }
  if ("crit" in header) throw new Error("the JWS has critical header parameters");
  const signature = b64uDecode(parts[2]);
  if (signature.length !== 64) throw new Error("the ES256 signature is not 64 bytes");
  const ok = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, signature, utf8(`${parts[0]}.${parts[1]}`));
  if (!ok) throw new Error("the signature does not verify");
  if (!payload || typeof payload !== "object" || Array.isArray(payload)) throw new Error("the JWS payload is not an object");
  return { header, payload };
}

/** A P-256 public key (WebCrypto) for verifying, from SubjectPublicKeyInfo bytes. */
export function importSpki(spki) {
  return crypto.subtle.importKey("spki", spki, ECDSA, false, ["verify"]);
}

function lengthPrefixed(bytes) {
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, 4);
  return out;
}

function concat(...arrays) {
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

/**
 * The Concat KDF of RFC 7518 §4.6.2 (NIST SP 800-56A, SHA-256) for ECDH-ES in direct
 * key agreement mode: the AlgorithmID is the `enc` value, keydatalen its key size.
 */
export async function concatKdf(sharedSecret, enc, bits, apu = new Uint8Array(0), apv = new Uint8Array(0)) {
  const suppPub = new Uint8Array(4);
  new DataView(suppPub.buffer).setUint32(0, bits);
  const otherInfo = concat(lengthPrefixed(utf8(enc)), lengthPrefixed(apu), lengthPrefixed(apv), suppPub);
  const out = [];
  for (let counter = 1; out.length * 32 < bits / 8; counter++) {
    const round = new Uint8Array(4);
    new DataView(round.buffer).setUint32(0, counter);
    out.push(new Uint8Array(await crypto.subtle.digest("SHA-256", concat(round, sharedSecret, otherInfo))));
  }
  return concat(...out).slice(0, bits / 8);
}

/**
 * `plaintext` (a string) encrypted to the verifier's P-256 public JWK `jwk` as a
 * compact JWE: alg ECDH-ES, `enc` A128GCM or A256GCM, `kid` copied from the key.
 * Throws Error for another key type or `enc`.
 */
export async function encryptJwe(plaintext, jwk, enc) {
  const bits = ENC_BITS[enc];
  if (!bits) throw new Error(`content encryption ${enc} is not supported`);
  if (!jwk || jwk.kty !== "EC" || jwk.crv !== "P-256" || typeof jwk.x !== "string" || typeof jwk.y !== "string") {
    throw new Error("the verifier's encryption key is not a P-256 key");
  }
  const theirs = await crypto.subtle.importKey("jwk", { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y },
    { name: "ECDH", namedCurve: "P-256" }, false, []);
  const ephemeral = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"]);
  const shared = new Uint8Array(await crypto.subtle.deriveBits({ name: "ECDH", public: theirs }, ephemeral.privateKey, 256));
  const epk = await crypto.subtle.exportKey("jwk", ephemeral.publicKey);
  const header = { alg: "ECDH-ES", enc, epk: { kty: "EC", crv: "P-256", x: epk.x, y: epk.y } };
  if (typeof jwk.kid === "string") header.kid = jwk.kid;
  const protectedHeader = b64u(utf8(JSON.stringify(header)));
  const cek = await crypto.subtle.importKey("raw", await concatKdf(shared, enc, bits), { name: "AES-GCM" }, false, ["encrypt"]);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = new Uint8Array(await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: utf8(protectedHeader), tagLength: 128 }, cek, utf8(plaintext)));
  const ciphertext = sealed.subarray(0, sealed.length - 16);
  const tag = sealed.subarray(sealed.length - 16);
  return `${protectedHeader}..${b64u(iv)}.${b64u(ciphertext)}.${b64u(tag)}`;
}
