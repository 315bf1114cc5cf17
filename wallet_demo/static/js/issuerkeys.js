// The issuer's signing keys (SD-JWT VC issuer metadata, /.well-known/jwt-vc-issuer),
// fetched from the issuer itself, and ES256 verification of its compact JWS (the
// status list tokens). Verifiers decide trust through the chain's registry; the wallet
// only needs to know that what it shows the resident comes from the issuer it holds
// the certificate of.
import { b64uDecode, b64uJson, utf8 } from "./b64.js";

const cache = new Map(); // issuer -> Promise<JWKS keys>

async function issuerKeys(issuer) {
  if (!cache.has(issuer)) {
    const loading = fetch(`${issuer}/.well-known/jwt-vc-issuer`, { credentials: "omit" })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
      .then((meta) => {
        if (!meta || meta.issuer !== issuer || !meta.jwks || !Array.isArray(meta.jwks.keys)) {
          throw new Error("the issuer metadata is not this issuer's");
        }
        return meta.jwks.keys;
      });
    loading.catch(() => cache.delete(issuer));
    cache.set(issuer, loading);
  }
  return cache.get(issuer);
}

/**
 * The payload of a compact JWS signed with ES256 by one of `issuer`'s keys (by `kid`),
 * with header `typ` equal to `typ`. Rejects with an Error otherwise.
 */
export async function verifyIssuerJws(token, issuer, typ) {
  const parts = String(token).trim().split(".");
  if (parts.length !== 3) throw new Error("not a compact JWS");
  const header = b64uJson(parts[0]);
  if (header.alg !== "ES256" || header.typ !== typ || "crit" in header) {
    throw new Error("unexpected JWS header");
  }
  const jwk = (await issuerKeys(issuer)).find((k) => k.kid === header.kid);
  if (!jwk || jwk.kty !== "EC" || jwk.crv !== "P-256") throw new Error("unknown issuer key");
  const key = await crypto.subtle.importKey(
    "jwk",
    { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y },
    { name: "ECDSA", namedCurve: "P-256" },
    false,
    ["verify"],
  );
  const ok = await crypto.subtle.verify(
    { name: "ECDSA", hash: "SHA-256" },
    key,
    b64uDecode(parts[2]),
    utf8(`${parts[0]}.${parts[1]}`),
  );
  if (!ok) throw new Error("the issuer's signature does not verify");
  const payload = b64uJson(parts[1]);
  if (payload.iss !== undefined && payload.iss !== issuer) throw new Error("another issuer's token");
  return payload;
}
