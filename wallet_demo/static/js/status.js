// A credential's revocation status from its issuer's Token Status List token
// (draft-ietf-oauth-status-list, as credentials/status_list.py writes it): a JWT
// whose payload has status_list {bits, lst}, lst = base64url(zlib(bytes)), entry i at
// bit i*bits, least significant bit first. With the issuer given, the token must be
// signed by one of the issuer's keys (issuerkeys.js).
import { verifyIssuerJws } from "./issuerkeys.js";
import { b64uDecode, b64uJson } from "./b64.js";

export const VALID = 0;
export const INVALID = 1;
export const SUSPENDED = 2;
const MAX_BYTES = 4 * 1024 * 1024;

async function inflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  const reader = stream.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > MAX_BYTES) {
      await reader.cancel();
      throw new Error("the status list is too large");
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** The entry `idx` of a decoded list `{bits, lst}`. Rejects when malformed or too short. */
export async function readEntry(statusList, idx) {
  const bits = statusList && statusList.bits;
  if (![1, 2, 4, 8].includes(bits) || typeof statusList.lst !== "string") {
    throw new Error("not a status list");
  }
  const data = await inflate(b64uDecode(statusList.lst));
  const bit = idx * bits;
  const byte = bit >> 3;
  if (!Number.isInteger(idx) || idx < 0 || byte >= data.length) {
    throw new Error("the index is outside the status list");
  }
  return (data[byte] >> (bit & 7)) & ((1 << bits) - 1);
}

/** The payload of a status list token (unverified). */
export function tokenPayload(token) {
  const parts = String(token).trim().split(".");
  if (parts.length !== 3) throw new Error("not a status list token");
  return b64uJson(parts[1]);
}

/**
 * Fetch `status.uri` and read entry `status.idx`: 0 valid, 1 revoked, 2 suspended…
 * With `issuer`, the token's signature is checked against the issuer's keys first.
 */
export async function fetchStatus(status, issuer = null) {
  const response = await fetch(status.uri, {
    headers: { Accept: "application/statuslist+jwt" },
    cache: "no-cache",
  });
  if (!response.ok) throw new Error(`status list: HTTP ${response.status}`);
  const token = await response.text();
  const payload = issuer ? await verifyIssuerJws(token, issuer, "statuslist+jwt") : tokenPayload(token);
  if (payload.sub !== undefined && payload.sub !== status.uri) {
    throw new Error("the status list token is for another list");
  }
  return readEntry(payload.status_list, status.idx);
}
