// Byte encodings (RFC 4648): base64url without padding, which JWTs and SD-JWTs use,
// and base32 without padding, for the relay links. Every wallet module uses these.
const encoder = new TextEncoder();
const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

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

/** The UTF-8 text of base64url. Throws on bad base64url or bad UTF-8. */
export function b64uText(text) {
  return new TextDecoder("utf-8", { fatal: true }).decode(b64uDecode(text));
}

/** The JSON value of base64url text (a JWT's header or payload, a disclosure). */
export function b64uJson(text) {
  return JSON.parse(b64uText(text));
}

/** base32 (upper case, no padding) of bytes. */
export function b32(bytes) {
  let bits = 0;
  let value = 0;
  let out = "";
  for (const b of bytes) {
    value = ((value << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31];
  return out;
}
