// SD-JWT (RFC 9901) on the holder's side: read a credential and make a presentation.
// The issuer makes every personal claim a top-level disclosure (credentials/sdjwt.py
// issue(): nested values such as `children` travel whole inside their disclosure),
// except the members of `age_equal_or_over`, each a disclosure of its own inside its
// parent's: a presentation names top-level claims (with all they hold) or one
// `parent.member`.
import { b64u, b64uJson, utf8 } from "./b64.js";
import { Problem, joinList } from "./i18n.js";
import { signJwt } from "./keys.js";
import { sha256 } from "./sha256.js";

/** Registered claims and SD-JWT machinery: never items the resident shows or reads. */
export const REGISTERED = new Set([
  "iss", "iat", "exp", "nbf", "vct", "cnf", "status", "sub", "_sd", "_sd_alg", "vct#integrity",
]);

function ascii(text) {
  if (!/^[\x21-\x7e]*$/.test(text)) throw new Error("not an SD-JWT (non-ASCII characters)");
  return utf8(text);
}

/** base64url SHA-256 of an ASCII string (a disclosure, a presentation). */
export function digest(text) {
  return b64u(sha256(ascii(text)));
}

function decodeJson(part, what) {
  try {
    return b64uJson(part);
  } catch {
    throw new Error(`not an SD-JWT (${what} is not base64url JSON)`);
  }
}

/**
 * Split `JWT~D1~…~Dn~[KB-JWT]` without verifying anything:
 * `{jwt, header, payload, disclosures: [{raw, digest, name, value}], kbJwt}`
 * (`name` is null for an array-element disclosure). Throws Error when malformed.
 */
export function parse(sdJwt) {
  const text = String(sdJwt).trim();
  const parts = text.split("~");
  if (parts.length < 2) throw new Error("not an SD-JWT (no '~' separator)");
  const jwt = parts[0];
  const pieces = jwt.split(".");
  if (pieces.length !== 3) throw new Error("not an SD-JWT (the JWT is not a compact JWS)");
  const header = decodeJson(pieces[0], "the header");
  const payload = decodeJson(pieces[1], "the payload");
  const kb = parts[parts.length - 1];
  const disclosures = parts.slice(1, -1).map((raw) => {
    if (!raw) throw new Error("not an SD-JWT (an empty disclosure)");
    const decoded = decodeJson(raw, "a disclosure");
    if (!Array.isArray(decoded) || (decoded.length !== 2 && decoded.length !== 3)) {
      throw new Error("not an SD-JWT (a disclosure is not an array of 2 or 3)");
    }
    const named = decoded.length === 3;
    return {
      raw,
      digest: digest(raw),
      name: named ? decoded[1] : null,
      value: named ? decoded[2] : decoded[1],
    };
  });
  return { jwt, header, payload, disclosures, kbJwt: kb || null };
}

/** The names of the disclosures the issuer-signed payload references at the top level. */
export function claimNames(sdJwt) {
  const { payload, disclosures } = parse(sdJwt);
  const listed = new Set(Array.isArray(payload._sd) ? payload._sd : []);
  return disclosures.filter((d) => d.name !== null && listed.has(d.digest)).map((d) => d.name);
}

/** The digests an object's `_sd` lists (none for anything else). */
function listedIn(value) {
  return value && typeof value === "object" && Array.isArray(value._sd) ? value._sd : [];
}

/**
 * `value` with the members its `_sd` digests disclose (from `byDigest`) in place,
 * recursively, and `_sd` removed: what the certificate says.
 */
export function resolveValue(value, byDigest) {
  if (Array.isArray(value)) return value.map((v) => resolveValue(v, byDigest));
  if (!value || typeof value !== "object") return value;
  const out = {};
  for (const [k, v] of Object.entries(value)) if (k !== "_sd") out[k] = resolveValue(v, byDigest);
  for (const d of listedIn(value).map((h) => byDigest.get(h))) {
    if (d && d.name !== null) out[d.name] = resolveValue(d.value, byDigest);
  }
  return out;
}

/** The raw disclosures nested in `value` (its members', recursively). */
function nestedRaw(value, byDigest) {
  const out = [];
  for (const d of listedIn(value).map((h) => byDigest.get(h))) {
    if (d) out.push(d.raw, ...nestedRaw(d.value, byDigest));
  }
  return out;
}

/**
 * The presentation of `record.sdJwt` revealing only the claims in `names` (in the
 * credential's order; `parent.member` for one member of an object whose members are
 * disclosed one by one), ending in `~`; with `kb = {nonce, aud[, iat]}` followed by a
 * key-binding JWT signed with `record.keyId` whose sd_hash covers everything up to
 * and including the last `~` (as credentials/sdjwt.py computes it). Rejects with an
 * Error for a name the credential does not have.
 */
export async function present(record, names, kb) {
  const { jwt, payload, disclosures } = parse(record.sdJwt);
  const listed = new Set(Array.isArray(payload._sd) ? payload._sd : []);
  const top = disclosures.filter((d) => d.name !== null && listed.has(d.digest));
  const byDigest = new Map(disclosures.map((d) => [d.digest, d]));
  const byName = new Map(top.map((d) => [d.name, d]));
  const picked = new Set();
  const missing = [];
  for (const name of names) {
    const whole = byName.get(name);
    const dot = name.indexOf(".");
    const parent = dot > 0 ? byName.get(name.slice(0, dot)) : undefined;
    const member = parent
      ? listedIn(parent.value).map((h) => byDigest.get(h)).find((d) => d && d.name === name.slice(dot + 1))
      : undefined;
    if (whole) {
      picked.add(whole.raw);
      for (const raw of nestedRaw(whole.value, byDigest)) picked.add(raw);
    } else if (member) {
      picked.add(parent.raw);
      picked.add(member.raw);
      for (const raw of nestedRaw(member.value, byDigest)) picked.add(raw);
    } else {
      missing.push(name);
    }
  }
  if (missing.length) {
    throw new Problem(
      `この証明書にない項目です: ${joinList(missing)}`,
      `not in this credential: ${missing.join(", ")}`,
    );
  }
  const chosen = disclosures.filter((d) => picked.has(d.raw)).map((d) => d.raw);
  return bind(record, [jwt, ...chosen].join("~") + "~", kb);
}

/** `text` (an SD-JWT ending in `~`) followed by a key-binding JWT when `kb` is given. */
async function bind(record, text, kb) {
  if (!kb) return text;
  if (typeof kb.nonce !== "string" || typeof kb.aud !== "string") {
    throw new Error("a key-binding JWT needs nonce and aud");
  }
  if (!record.keyId) throw new Error("this credential has no holder key");
  const iat = Number.isInteger(kb.iat) ? kb.iat : Math.floor(Date.now() / 1000);
  const kbPayload = { iat, aud: kb.aud, nonce: kb.nonce, sd_hash: digest(text) };
  return text + (await signJwt(record.keyId, { alg: "ES256", typ: "kb+jwt" }, kbPayload));
}

// ------------------------------------------------------------------ claims path pointers

function isObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * Where a claims path pointer (OpenID4VP §7: strings, null for every array element,
 * indexes) leads in a parsed SD-JWT, following disclosures at every level (the
 * issuer's top-level ones and any nested `_sd` / `{"...": digest}` ones):
 * `{values: [selected JSON values], disclosures: Set(raw disclosures needed to reveal
 * them, including every disclosure inside them)}`; `values` is empty when the path
 * leads nowhere. Throws Error when the pointer does not fit the credential's shape.
 */
export function resolvePath(parsed, path) {
  const byDigest = new Map(parsed.disclosures.map((d) => [d.digest, d]));
  const needed = new Set();
  const everything = (node) => {
    if (Array.isArray(node)) {
      for (const item of node) {
        const d = isObject(item) && Object.keys(item).length === 1 ? byDigest.get(item["..."]) : null;
        if (d && d.name === null) {
          needed.add(d.raw);
          everything(d.value);
        } else {
          everything(item);
        }
      }
    } else if (isObject(node)) {
      for (const digest of Array.isArray(node._sd) ? node._sd : []) {
        const d = byDigest.get(digest);
        if (d && d.name !== null) {
          needed.add(d.raw);
          everything(d.value);
        }
      }
      for (const [k, v] of Object.entries(node)) if (k !== "_sd") everything(v);
    }
  };
  // Each selected element: {value (as signed, with _sd inside), via: [raw disclosures]}
  let selected = [{ value: parsed.payload, via: [] }];
  for (const part of path) {
    const next = [];
    for (const { value, via } of selected) {
      if (typeof part === "string") {
        if (!isObject(value)) throw new Error(`claim path ${JSON.stringify(path)} does not fit this credential`);
        if (Object.hasOwn(value, part) && part !== "_sd" && part !== "_sd_alg") {
          next.push({ value: value[part], via });
          continue;
        }
        for (const digest of Array.isArray(value._sd) ? value._sd : []) {
          const d = byDigest.get(digest);
          if (d && d.name === part) next.push({ value: d.value, via: [...via, d.raw] });
        }
      } else if (part === null || (Number.isInteger(part) && part >= 0)) {
        if (!Array.isArray(value)) throw new Error(`claim path ${JSON.stringify(path)} does not fit this credential`);
        const items = part === null ? value : value.slice(part, part + 1);
        for (const item of items) {
          const d = isObject(item) && Object.keys(item).length === 1 ? byDigest.get(item["..."]) : null;
          if (d && d.name === null) next.push({ value: d.value, via: [...via, d.raw] });
          else if (!(isObject(item) && "..." in item)) next.push({ value: item, via });
        }
      } else {
        throw new Error(`claim path ${JSON.stringify(path)} is not a claims path pointer`);
      }
    }
    selected = next;
  }
  for (const { value, via } of selected) {
    via.forEach((raw) => needed.add(raw));
    everything(value);
  }
  const plain = (node) => {
    if (Array.isArray(node)) {
      return node.flatMap((item) => {
        const d = isObject(item) && Object.keys(item).length === 1 ? byDigest.get(item["..."]) : null;
        if (d && d.name === null) return [plain(d.value)];
        return isObject(item) && "..." in item ? [] : [plain(item)];
      });
    }
    if (!isObject(node)) return node;
    const out = {};
    for (const [k, v] of Object.entries(node)) if (k !== "_sd" && k !== "_sd_alg") out[k] = plain(v);
    for (const digest of Array.isArray(node._sd) ? node._sd : []) {
      const d = byDigest.get(digest);
      if (d && d.name !== null) out[d.name] = plain(d.value);
    }
    return out;
  };
  return { values: selected.map((s) => plain(s.value)), disclosures: needed };
}

/**
 * The presentation of `record.sdJwt` revealing exactly what the claims path pointers
 * `paths` need (disclosures in the credential's order), with a key-binding JWT when
 * `kb = {nonce, aud[, iat]}` is given (as present()). Throws Error for a path the
 * credential does not have.
 */
export async function presentPaths(record, paths, kb) {
  const parsed = parse(record.sdJwt);
  const needed = new Set();
  for (const path of paths) {
    const { values, disclosures } = resolvePath(parsed, path);
    if (!values.length) throw new Error(`not in this credential: ${JSON.stringify(path)}`);
    disclosures.forEach((raw) => needed.add(raw));
  }
  const chosen = parsed.disclosures.filter((d) => needed.has(d.raw)).map((d) => d.raw);
  return bind(record, [parsed.jwt, ...chosen].join("~") + "~", kb);
}
