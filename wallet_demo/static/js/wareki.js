// Dates as residents read them: 西暦 and 和暦 (令和7年10月6日; the first year is 元年).
// Dates are calendar dates in Japan: timestamps are read in Asia/Tokyo.
const ERAS = [
  { name: "令和", en: "Reiwa", start: [2019, 5, 1] },
  { name: "平成", en: "Heisei", start: [1989, 1, 8] },
  { name: "昭和", en: "Showa", start: [1926, 12, 25] },
  { name: "大正", en: "Taisho", start: [1912, 7, 30] },
  { name: "明治", en: "Meiji", start: [1873, 1, 1] }, // the Gregorian calendar from here
];
const TOKYO = new Intl.DateTimeFormat("en-CA", {
  timeZone: "Asia/Tokyo",
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
});

/** [year, month, day] of "YYYY-MM-DD…", a Date, or milliseconds (in Japan); null if not a date. */
export function ymd(value) {
  if (typeof value === "string") {
    const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(value);
    if (!m) return null;
    return [Number(m[1]), Number(m[2]), Number(m[3])];
  }
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) return null;
  const [y, mo, d] = TOKYO.format(date).split("-").map(Number);
  return [y, mo, d];
}

function before(a, b) {
  return a[0] !== b[0] ? a[0] < b[0] : a[1] !== b[1] ? a[1] < b[1] : a[2] < b[2];
}

/** "令和7年10月6日" (元年 for the first year); null before 1873 or for a non-date. */
export function wareki(value) {
  const date = ymd(value);
  if (!date) return null;
  const era = ERAS.find((e) => !before(date, e.start));
  if (!era) return null;
  const year = date[0] - era.start[0] + 1;
  return `${era.name}${year === 1 ? "元" : year}年${date[1]}月${date[2]}日`;
}

/** "2025年10月6日". */
export function seireki(value) {
  const date = ymd(value);
  return date ? `${date[0]}年${date[1]}月${date[2]}日` : null;
}

/** "2025年10月6日（令和7年10月6日）", or in English "2025-10-06 (Reiwa 7)". */
export function formatDate(value, lang = "ja") {
  const date = ymd(value);
  if (!date) return String(value);
  const jp = wareki(value);
  if (lang === "en") {
    const iso = `${date[0]}-${String(date[1]).padStart(2, "0")}-${String(date[2]).padStart(2, "0")}`;
    const era = ERAS.find((e) => !before(date, e.start));
    return era ? `${iso} (${era.en} ${date[0] - era.start[0] + 1})` : iso;
  }
  return jp ? `${seireki(value)}（${jp}）` : seireki(value);
}

/** True for an ISO date string "YYYY-MM-DD". */
export function isIsoDate(value) {
  return typeof value === "string" && /^\d{4}-\d{2}-\d{2}$/.test(value);
}
