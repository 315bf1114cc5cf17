// DCQL (OpenID4VP 1.0 §6, §7): read a verifier's query strictly, and work out which
// of the wallet's certificates answer which Credential Query with which claims,
// following the selection rules of §6.4 (claims, claim_sets, credential_sets, values).
// Only the `dc+sd-jwt` format exists in this wallet; other formats match nothing.
import { Problem } from "./i18n.js";
import { parse, resolvePath } from "./sdjwt.js";

const ID = /^[A-Za-z0-9_-]+$/;
const MAX_QUERIES = 16;
const MAX_CLAIMS = 64;

function refuse(en) {
  return new Problem(`依頼の検索条件（DCQL）を扱えません: ${en}`, `cannot use the request's query (DCQL): ${en}`);
}

function isObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function checkPath(path) {
  if (!Array.isArray(path) || !path.length || path.length > 16) throw refuse("a claim path is not a non-empty array");
  for (const p of path) {
    if (!(typeof p === "string" || p === null || (Number.isInteger(p) && p >= 0))) {
      throw refuse(`claim path ${JSON.stringify(path)} holds ${JSON.stringify(p)}`);
    }
  }
  return path;
}

function checkClaims(q) {
  if (q.claims === undefined) {
    if (q.claim_sets !== undefined) throw refuse(`claim_sets without claims in "${q.id}"`);
    return { claims: [], claimSets: null };
  }
  if (!Array.isArray(q.claims) || !q.claims.length || q.claims.length > MAX_CLAIMS) {
    throw refuse(`claims of "${q.id}" is not a non-empty array`);
  }
  const ids = new Set();
  const claims = q.claims.map((c) => {
    if (!isObject(c)) throw refuse(`a claim of "${q.id}" is not an object`);
    if (c.id !== undefined) {
      if (typeof c.id !== "string" || !ID.test(c.id) || ids.has(c.id)) throw refuse(`bad claim id ${JSON.stringify(c.id)}`);
      ids.add(c.id);
    }
    if (c.values !== undefined && (!Array.isArray(c.values) || !c.values.length ||
        !c.values.every((v) => ["string", "number", "boolean"].includes(typeof v)))) {
      throw refuse(`values of a claim of "${q.id}"`);
    }
    return { id: c.id, path: checkPath(c.path), values: c.values };
  });
  let claimSets = null;
  if (q.claim_sets !== undefined) {
    if (!Array.isArray(q.claim_sets) || !q.claim_sets.length) throw refuse(`claim_sets of "${q.id}"`);
    claimSets = q.claim_sets.map((set) => {
      if (!Array.isArray(set) || !set.length || !set.every((id) => ids.has(id))) {
        throw refuse(`claim_sets of "${q.id}" names claims that are not there`);
      }
      return set;
    });
  }
  return { claims, claimSets };
}

/**
 * The query `q` checked: `{credentials: [{id, format, vctValues|null, claims: [{id,
 * path, values}], claimSets|null}], credentialSets: [{options, required}]|null}`.
 * Throws Problem for anything malformed or that this wallet does not support.
 */
export function readQuery(q) {
  if (!isObject(q) || !Array.isArray(q.credentials) || !q.credentials.length || q.credentials.length > MAX_QUERIES) {
    throw refuse("credentials is not a non-empty array");
  }
  const ids = new Set();
  const credentials = q.credentials.map((c) => {
    if (!isObject(c) || typeof c.id !== "string" || !ID.test(c.id) || ids.has(c.id)) {
      throw refuse(`bad credential query id ${JSON.stringify(c && c.id)}`);
    }
    ids.add(c.id);
    if (typeof c.format !== "string") throw refuse(`"${c.id}" has no format`);
    if (!isObject(c.meta)) throw refuse(`"${c.id}" has no meta`);
    let vctValues = null;
    if (c.format === "dc+sd-jwt" && c.meta.vct_values !== undefined) {
      if (!Array.isArray(c.meta.vct_values) || !c.meta.vct_values.every((v) => typeof v === "string")) {
        throw refuse(`meta.vct_values of "${c.id}"`);
      }
      vctValues = c.meta.vct_values;
    }
    return { id: c.id, format: c.format, vctValues, ...checkClaims(c) };
  });
  let credentialSets = null;
  if (q.credential_sets !== undefined) {
    if (!Array.isArray(q.credential_sets) || !q.credential_sets.length) throw refuse("credential_sets");
    credentialSets = q.credential_sets.map((s) => {
      if (!isObject(s) || !Array.isArray(s.options) || !s.options.length ||
          !s.options.every((o) => Array.isArray(o) && o.length && o.every((id) => ids.has(id)))) {
        throw refuse("credential_sets names credential queries that are not there");
      }
      if (s.required !== undefined && typeof s.required !== "boolean") throw refuse("credential_sets required");
      return { options: s.options, required: s.required !== false };
    });
  }
  return { credentials, credentialSets };
}

/** The claims a record gives for one query's claim list, or null when one is missing. */
function claimsOf(parsed, list) {
  const out = [];
  for (const claim of list) {
    let found;
    try {
      found = resolvePath(parsed, claim.path);
    } catch {
      return null;
    }
    let values = found.values;
    if (claim.values) values = values.filter((v) => claim.values.some((w) => w === v));
    if (!values.length) return null;
    out.push({ path: claim.path, values });
  }
  return out;
}

/** For one Credential Query, each record that answers it: [{record, claims: [{path, values}]}]. */
function candidates(query, records) {
  if (query.format !== "dc+sd-jwt") return [];
  const out = [];
  for (const record of records) {
    if (query.vctValues && !query.vctValues.includes(record.vct)) continue;
    let parsed;
    try {
      parsed = parse(record.sdJwt);
    } catch {
      continue;
    }
    const options = query.claimSets
      ? query.claimSets.map((set) => query.claims.filter((c) => set.includes(c.id)))
      : [query.claims];
    for (const option of options) {
      const claims = claimsOf(parsed, option);
      if (claims) {
        out.push({ record, claims });
        break; // the first claim set this record satisfies (§6.4.1)
      }
    }
  }
  return out;
}

/**
 * What the wallet can answer: `{answers: [{queryId, choices: [{record, claims}],
 * required}], missing: [queryId]}`. With credential_sets, each set is answered by its
 * first option the wallet can satisfy; a required set it cannot satisfy lists its
 * first option's queries as missing. Without, every query is required.
 */
export function match(query, records) {
  const byId = new Map(query.credentials.map((q) => [q.id, candidates(q, records)]));
  const answers = [];
  const missing = [];
  const sets = query.credentialSets || [{ options: [query.credentials.map((q) => q.id)], required: true }];
  const taken = new Set();
  for (const set of sets) {
    const option = set.options.find((ids) => ids.every((id) => byId.get(id).length));
    if (!option) {
      if (set.required) missing.push(...set.options[0].filter((id) => !byId.get(id).length));
      continue;
    }
    for (const id of option) {
      if (taken.has(id)) continue;
      taken.add(id);
      answers.push({ queryId: id, choices: byId.get(id), required: set.required });
    }
  }
  return { answers, missing: [...new Set(missing)] };
}
