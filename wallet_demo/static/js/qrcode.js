// A small QR code encoder (ISO/IEC 18004): byte and alphanumeric modes, error
// correction level M, versions 1-40, Reed-Solomon over GF(256), and the mask with the
// lowest penalty score. encode(text) returns the module matrix; svg(qr) draws it with
// a quiet zone. Written for the wallet: the SH1: payload is Base45, all of it in the
// alphanumeric set, so it gets alphanumeric mode (11 bits per 2 characters).

const ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
const MODE_ALNUM = 0x2;
const MODE_BYTE = 0x4;

// Level M, index = version (0 unused): EC codewords per block, and number of blocks.
const ECC_PER_BLOCK = [-1, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24,
  28, 28, 26, 26, 26, 26, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  28, 28, 28];
const NUM_BLOCKS = [-1, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16,
  17, 17, 18, 20, 21, 23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49];
const FORMAT_M = 0; // the two error-correction bits of level M

// ------------------------------------------------------------------ segments

function isAlnum(ch) { return ALNUM.indexOf(ch) >= 0; }

function countBits(mode, version) {
  const band = version <= 9 ? 0 : version <= 26 ? 1 : 2;
  return mode === MODE_ALNUM ? [9, 11, 13][band] : [8, 16, 16][band];
}

function segmentBits(seg, version) {
  const n = seg.mode === MODE_ALNUM ? seg.text.length : seg.bytes.length;
  const data = seg.mode === MODE_ALNUM
    ? Math.floor(n / 2) * 11 + (n % 2) * 6 : n * 8;
  return 4 + countBits(seg.mode, version) + data;
}

function makeSegment(mode, text) {
  return mode === MODE_ALNUM
    ? { mode, text }
    : { mode, text, bytes: new TextEncoder().encode(text) };
}

// Alphanumeric runs long enough to pay for a segment header of their own stay
// alphanumeric; the rest goes in byte mode (a URL's lower-case path, "#").
const MIN_ALNUM_RUN = 12;

export function segments(text) {
  const runs = [];
  for (const ch of text) {
    const mode = isAlnum(ch) ? MODE_ALNUM : MODE_BYTE;
    const last = runs[runs.length - 1];
    if (last && last.mode === mode) last.text += ch;
    else runs.push({ mode, text: ch });
  }
  const merged = [];
  runs.forEach((run, i) => {
    const alone = runs.length === 1;
    const mode = run.mode === MODE_ALNUM && !alone && run.text.length < MIN_ALNUM_RUN
      ? MODE_BYTE : run.mode;
    const last = merged[merged.length - 1];
    if (last && last.mode === mode) last.text += run.text;
    else merged.push({ mode, text: run.text });
    void i;
  });
  return merged.map((s) => makeSegment(s.mode, s.text));
}

// ------------------------------------------------------------------ sizes

function numRawDataModules(ver) {
  let result = (16 * ver + 128) * ver + 64;
  if (ver >= 2) {
    const numAlign = Math.floor(ver / 7) + 2;
    result -= (25 * numAlign - 10) * numAlign - 55;
    if (ver >= 7) result -= 36;
  }
  return result;
}

function dataCodewords(ver) {
  return Math.floor(numRawDataModules(ver) / 8) - ECC_PER_BLOCK[ver] * NUM_BLOCKS[ver];
}

function alignmentPositions(ver) {
  if (ver === 1) return [];
  const size = ver * 4 + 17;
  const numAlign = Math.floor(ver / 7) + 2;
  const step = Math.floor((ver * 8 + numAlign * 3 + 5) / (numAlign * 4 - 4)) * 2;
  const result = [6];
  for (let pos = size - 7; result.length < numAlign; pos -= step) result.splice(1, 0, pos);
  return result;
}

// ------------------------------------------------------------------ Reed-Solomon

function gfMultiply(x, y) {
  let z = 0;
  for (let i = 7; i >= 0; i--) {
    z = (z << 1) ^ ((z >>> 7) * 0x11d);
    z ^= ((y >>> i) & 1) * x;
  }
  return z;
}

function rsDivisor(degree) {
  const result = new Array(degree).fill(0);
  result[degree - 1] = 1;
  let root = 1;
  for (let i = 0; i < degree; i++) {
    for (let j = 0; j < result.length; j++) {
      result[j] = gfMultiply(result[j], root);
      if (j + 1 < result.length) result[j] ^= result[j + 1];
    }
    root = gfMultiply(root, 0x02);
  }
  return result;
}

function rsRemainder(data, divisor) {
  const result = divisor.map(() => 0);
  for (const b of data) {
    const factor = b ^ result.shift();
    result.push(0);
    divisor.forEach((coef, i) => { result[i] ^= gfMultiply(coef, factor); });
  }
  return result;
}

function withEcc(data, ver) {
  const numBlocks = NUM_BLOCKS[ver];
  const eccLen = ECC_PER_BLOCK[ver];
  const raw = Math.floor(numRawDataModules(ver) / 8);
  const numShort = numBlocks - (raw % numBlocks);
  const shortLen = Math.floor(raw / numBlocks);
  const divisor = rsDivisor(eccLen);
  const blocks = [];
  for (let i = 0, k = 0; i < numBlocks; i++) {
    const dat = data.slice(k, k + shortLen - eccLen + (i < numShort ? 0 : 1));
    k += dat.length;
    const ecc = rsRemainder(dat, divisor);
    if (i < numShort) dat.push(0);
    blocks.push(dat.concat(ecc));
  }
  const result = [];
  for (let i = 0; i < blocks[0].length; i++) {
    blocks.forEach((block, j) => {
      if (i !== shortLen - eccLen || j >= numShort) result.push(block[i]);
    });
  }
  return result;
}

// ------------------------------------------------------------------ data bits

function appendBits(bits, value, length) {
  for (let i = length - 1; i >= 0; i--) bits.push((value >>> i) & 1);
}

function dataBytes(segs, ver) {
  const bits = [];
  for (const seg of segs) {
    appendBits(bits, seg.mode, 4);
    if (seg.mode === MODE_ALNUM) {
      const t = seg.text;
      appendBits(bits, t.length, countBits(MODE_ALNUM, ver));
      let i = 0;
      for (; i + 1 < t.length; i += 2) {
        appendBits(bits, ALNUM.indexOf(t[i]) * 45 + ALNUM.indexOf(t[i + 1]), 11);
      }
      if (i < t.length) appendBits(bits, ALNUM.indexOf(t[i]), 6);
    } else {
      appendBits(bits, seg.bytes.length, countBits(MODE_BYTE, ver));
      for (const b of seg.bytes) appendBits(bits, b, 8);
    }
  }
  const capacity = dataCodewords(ver) * 8;
  appendBits(bits, 0, Math.min(4, capacity - bits.length));
  appendBits(bits, 0, (8 - (bits.length % 8)) % 8);
  const out = [];
  for (let i = 0; i < bits.length; i += 8) {
    let b = 0;
    for (let j = 0; j < 8; j++) b = (b << 1) | bits[i + j];
    out.push(b);
  }
  for (let pad = 0xec; out.length < capacity / 8; pad ^= 0xec ^ 0x11) out.push(pad);
  return out;
}

// ------------------------------------------------------------------ the matrix

class Matrix {
  constructor(ver) {
    this.size = ver * 4 + 17;
    this.modules = Array.from({ length: this.size }, () => new Array(this.size).fill(false));
    this.isFunction = Array.from({ length: this.size }, () => new Array(this.size).fill(false));
  }

  fn(x, y, dark) {
    this.modules[y][x] = dark;
    this.isFunction[y][x] = true;
  }
}

function drawFunctionPatterns(m, ver) {
  const size = m.size;
  for (let i = 0; i < size; i++) {
    m.fn(6, i, i % 2 === 0);
    m.fn(i, 6, i % 2 === 0);
  }
  for (const [cx, cy] of [[3, 3], [size - 4, 3], [3, size - 4]]) {
    for (let dy = -4; dy <= 4; dy++) {
      for (let dx = -4; dx <= 4; dx++) {
        const dist = Math.max(Math.abs(dx), Math.abs(dy));
        const x = cx + dx, y = cy + dy;
        if (x >= 0 && x < size && y >= 0 && y < size) m.fn(x, y, dist !== 2 && dist !== 4);
      }
    }
  }
  const pos = alignmentPositions(ver);
  const last = pos.length - 1;
  pos.forEach((px, i) => pos.forEach((py, j) => {
    if ((i === 0 && j === 0) || (i === 0 && j === last) || (i === last && j === 0)) return;
    for (let dy = -2; dy <= 2; dy++) {
      for (let dx = -2; dx <= 2; dx++) m.fn(px + dx, py + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
    }
  }));
  drawFormatBits(m, 0); // reserved now, written for real once the mask is chosen
  if (ver >= 7) {
    let rem = ver;
    for (let i = 0; i < 12; i++) rem = (rem << 1) ^ ((rem >>> 11) * 0x1f25);
    const bits = (ver << 12) | rem;
    for (let i = 0; i < 18; i++) {
      const dark = ((bits >>> i) & 1) === 1;
      const a = size - 11 + (i % 3), b = Math.floor(i / 3);
      m.fn(a, b, dark);
      m.fn(b, a, dark);
    }
  }
}

function drawFormatBits(m, mask) {
  const data = (FORMAT_M << 3) | mask;
  let rem = data;
  for (let i = 0; i < 10; i++) rem = (rem << 1) ^ ((rem >>> 9) * 0x537);
  const bits = ((data << 10) | rem) ^ 0x5412;
  const bit = (i) => ((bits >>> i) & 1) === 1;
  const size = m.size;
  for (let i = 0; i <= 5; i++) m.fn(8, i, bit(i));
  m.fn(8, 7, bit(6));
  m.fn(8, 8, bit(7));
  m.fn(7, 8, bit(8));
  for (let i = 9; i < 15; i++) m.fn(14 - i, 8, bit(i));
  for (let i = 0; i < 8; i++) m.fn(size - 1 - i, 8, bit(i));
  for (let i = 8; i < 15; i++) m.fn(8, size - 15 + i, bit(i));
  m.fn(8, size - 8, true); // the dark module
}

function drawCodewords(m, codewords) {
  const size = m.size;
  let i = 0;
  for (let right = size - 1; right >= 1; right -= 2) {
    if (right === 6) right = 5; // skip the vertical timing pattern
    for (let vert = 0; vert < size; vert++) {
      for (let j = 0; j < 2; j++) {
        const x = right - j;
        const upward = ((right + 1) & 2) === 0;
        const y = upward ? size - 1 - vert : vert;
        if (!m.isFunction[y][x] && i < codewords.length * 8) {
          m.modules[y][x] = ((codewords[i >>> 3] >>> (7 - (i & 7))) & 1) === 1;
          i++;
        }
      }
    }
  }
}

const MASKS = [
  (x, y) => (x + y) % 2 === 0,
  (x, y) => y % 2 === 0,
  (x) => x % 3 === 0,
  (x, y) => (x + y) % 3 === 0,
  (x, y) => (Math.floor(x / 3) + Math.floor(y / 2)) % 2 === 0,
  (x, y) => ((x * y) % 2) + ((x * y) % 3) === 0,
  (x, y) => (((x * y) % 2) + ((x * y) % 3)) % 2 === 0,
  (x, y) => (((x + y) % 2) + ((x * y) % 3)) % 2 === 0,
];

function applyMask(m, mask) {
  const f = MASKS[mask];
  for (let y = 0; y < m.size; y++) {
    for (let x = 0; x < m.size; x++) {
      if (!m.isFunction[y][x] && f(x, y)) m.modules[y][x] = !m.modules[y][x];
    }
  }
}

// The four penalty rules of ISO/IEC 18004 §7.8.3.
function penalty(modules) {
  const size = modules.length;
  let score = 0;
  const lines = [];
  for (let i = 0; i < size; i++) {
    lines.push(modules[i]);
    lines.push(modules.map((row) => row[i]));
  }
  const finderA = [1, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0];
  const finderB = [0, 0, 0, 0, 1, 0, 1, 1, 1, 0, 1];
  for (const line of lines) {
    let run = 1;
    for (let i = 1; i <= size; i++) {
      if (i < size && line[i] === line[i - 1]) { run++; continue; }
      if (run >= 5) score += 3 + (run - 5);
      run = 1;
    }
    for (let i = 0; i + 11 <= size; i++) {
      let a = true, b = true;
      for (let k = 0; k < 11 && (a || b); k++) {
        const v = line[i + k] ? 1 : 0;
        if (v !== finderA[k]) a = false;
        if (v !== finderB[k]) b = false;
      }
      if (a) score += 40;
      if (b) score += 40;
    }
  }
  let dark = 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (modules[y][x]) dark++;
      if (y + 1 < size && x + 1 < size) {
        const c = modules[y][x];
        if (c === modules[y][x + 1] && c === modules[y + 1][x] && c === modules[y + 1][x + 1]) score += 3;
      }
    }
  }
  const total = size * size;
  score += (Math.ceil(Math.abs(dark * 20 - total * 10) / total) - 1) * 10;
  return score;
}

// ------------------------------------------------------------------ API

/**
 * Encode text as a QR code at error correction level M in the smallest version.
 * Returns {version, size, mask, modules} (modules[y][x], true = dark). Throws a
 * RangeError when the text does not fit version 40. opts.mask (0-7) forces a mask.
 */
export function encode(text, opts = {}) {
  const segs = segments(text);
  let ver = 1;
  for (; ver <= 40; ver++) {
    const used = segs.reduce((n, s) => n + segmentBits(s, ver), 0);
    const lengthsFit = segs.every((s) =>
      (s.mode === MODE_ALNUM ? s.text.length : s.bytes.length) < 2 ** countBits(s.mode, ver));
    if (lengthsFit && used <= dataCodewords(ver) * 8) break;
  }
  if (ver > 40) throw new RangeError("text too long for a QR code at error correction M");
  const codewords = withEcc(dataBytes(segs, ver), ver);
  let best = null;
  const masks = opts.mask === undefined ? [0, 1, 2, 3, 4, 5, 6, 7] : [opts.mask];
  for (const mask of masks) {
    const m = new Matrix(ver);
    drawFunctionPatterns(m, ver);
    drawCodewords(m, codewords);
    applyMask(m, mask);
    drawFormatBits(m, mask);
    const score = masks.length > 1 ? penalty(m.modules) : 0;
    if (best === null || score < best.score) best = { score, mask, modules: m.modules };
  }
  return { version: ver, size: ver * 4 + 17, mask: best.mask, modules: best.modules };
}

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * An <svg> element of the code: dark modules as one path, a white quiet zone of
 * `border` modules (4 by default) around it, `scale` CSS pixels per module.
 */
export function svg(qr, { border = 4, scale = 6, doc = document } = {}) {
  const dim = qr.size + 2 * border;
  const parts = [];
  qr.modules.forEach((row, y) => row.forEach((dark, x) => {
    if (dark) parts.push(`M${x + border},${y + border}h1v1h-1z`);
  }));
  const el = doc.createElementNS(SVG_NS, "svg");
  el.setAttribute("viewBox", `0 0 ${dim} ${dim}`);
  el.setAttribute("width", String(dim * scale));
  el.setAttribute("height", String(dim * scale));
  el.setAttribute("shape-rendering", "crispEdges");
  el.setAttribute("role", "img");
  const bg = doc.createElementNS(SVG_NS, "rect");
  bg.setAttribute("width", String(dim));
  bg.setAttribute("height", String(dim));
  bg.setAttribute("fill", "#fff");
  const path = doc.createElementNS(SVG_NS, "path");
  path.setAttribute("d", parts.join(""));
  path.setAttribute("fill", "#000");
  el.append(bg, path);
  return el;
}
