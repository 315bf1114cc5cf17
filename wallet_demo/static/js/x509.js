// Just enough X.509 (RFC 5280) for OpenID4VP's x509_san_dns client identifiers: read a
// DER certificate's validity, subject and issuer, its public key (as SubjectPublicKeyInfo,
// which WebCrypto imports) and its subjectAltName dNSName entries. Nothing here decides
// trust: the wallet has no list of authorities, so it says so to the resident.

const OID_SAN = "2.5.29.17";
const OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1";
const OID_P256 = "1.2.840.10045.3.1.7";
const MAX_CERTIFICATE = 16 * 1024;

function bad(why) {
  return new Error(`not a readable certificate (${why})`);
}

/** One DER element at `offset`: {tag, start (of the value), end, header (start of the element)}. */
function element(bytes, offset, limit = bytes.length) {
  if (offset + 2 > limit) throw bad("truncated");
  const tag = bytes[offset];
  if ((tag & 0x1f) === 0x1f) throw bad("multi-byte tag");
  let length = bytes[offset + 1];
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 3 || start + count > limit) throw bad("bad length");
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[start + i];
    start += count;
  }
  const end = start + length;
  if (end > limit) throw bad("truncated");
  return { tag, start, end, header: offset };
}

/** The elements inside a constructed element. */
function children(bytes, parent) {
  const out = [];
  for (let at = parent.start; at < parent.end;) {
    const child = element(bytes, at, parent.end);
    out.push(child);
    at = child.end;
  }
  return out;
}

function oid(bytes, el) {
  const v = bytes.subarray(el.start, el.end);
  if (!v.length) throw bad("empty OID");
  const parts = [Math.floor(v[0] / 40), v[0] % 40];
  let n = 0;
  for (let i = 1; i < v.length; i++) {
    n = n * 128 + (v[i] & 0x7f);
    if (!(v[i] & 0x80)) {
      parts.push(n);
      n = 0;
    }
  }
  return parts.join(".");
}

function ascii(bytes, el) {
  return String.fromCharCode(...bytes.subarray(el.start, el.end));
}

/** UTCTime (0x17) or GeneralizedTime (0x18) as milliseconds since the epoch. */
function time(bytes, el) {
  const text = ascii(bytes, el);
  const m = el.tag === 0x17
    ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
    : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m || (el.tag !== 0x17 && el.tag !== 0x18)) throw bad("bad time");
  let year = Number(m[1]);
  if (el.tag === 0x17) year += year < 50 ? 2000 : 1900;
  return Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

function sameBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * The parts of a DER certificate the wallet needs: `{notBefore, notAfter (ms),
 * dnsNames: [string], selfIssued (issuer equals subject), spki (bytes), p256 (its key
 * is P-256)}`. Throws Error when it cannot be read.
 */
export function parseCertificate(der) {
  const bytes = der instanceof Uint8Array ? der : new Uint8Array(der);
  if (bytes.length > MAX_CERTIFICATE) throw bad("too large");
  const cert = element(bytes, 0);
  if (cert.tag !== 0x30 || cert.end !== bytes.length) throw bad("not a SEQUENCE");
  const [tbs] = children(bytes, cert);
  if (!tbs || tbs.tag !== 0x30) throw bad("no TBSCertificate");
  const fields = children(bytes, tbs);
  const skip = fields[0] && fields[0].tag === 0xa0 ? 1 : 0; // [0] version
  const [, , issuer, validity, subject, spki] = fields.slice(skip);
  if (!spki || validity.tag !== 0x30 || spki.tag !== 0x30) throw bad("missing fields");
  const [notBefore, notAfter] = children(bytes, validity);
  const [algorithm] = children(bytes, spki);
  const [keyType, curve] = children(bytes, algorithm);
  const dnsNames = [];
  const extensions = fields.slice(skip + 6).find((f) => f.tag === 0xa3);
  if (extensions) {
    const [list] = children(bytes, extensions);
    for (const ext of children(bytes, list)) {
      const parts = children(bytes, ext);
      if (oid(bytes, parts[0]) !== OID_SAN) continue;
      const value = parts[parts.length - 1]; // OCTET STRING holding GeneralNames
      const [names] = children(bytes, value);
      for (const name of children(bytes, names)) if (name.tag === 0x82) dnsNames.push(ascii(bytes, name));
    }
  }
  return {
    notBefore: time(bytes, notBefore),
    notAfter: time(bytes, notAfter),
    dnsNames,
    selfIssued: sameBytes(bytes.subarray(issuer.header, issuer.end), bytes.subarray(subject.header, subject.end)),
    spki: bytes.slice(spki.header, spki.end),
    p256: oid(bytes, keyType) === OID_EC_PUBLIC_KEY && Boolean(curve) && oid(bytes, curve) === OID_P256,
  };
}
