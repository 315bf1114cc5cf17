// The page language (Japanese first; English with ?lang=en or the toggle, remembered)
// and the large-text option, both kept in localStorage.
const LANG_KEY = "shomei-wallet-lang";
const LARGE_KEY = "shomei-wallet-large-text";

function stored(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function remember(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // private mode: the choice lasts for this page only
  }
}

let current = "ja";

/** "ja" or "en". */
export function lang() {
  return current;
}

/** The text in the current language. */
export function t(ja, en) {
  return current === "en" ? en : ja;
}

/** Items of a list joined as the current language writes them (、 or a comma). */
export function joinList(items) {
  return items.join(current === "en" ? ", " : "、");
}

/** An error the resident reads, in both languages (`message` is the English). */
export class Problem extends Error {
  constructor(ja, en) {
    super(en);
    this.ja = ja;
    this.en = en;
  }
}

/** What to tell the resident about `err`: a Problem in the current language, else its message. */
export function messageOf(err) {
  if (err instanceof Problem) return t(err.ja, err.en);
  return err && err.message ? err.message : String(err);
}

/**
 * Show every element with a data-en attribute in `next` ("ja" or "en"), then tell the
 * views that draw their own text (the "shomei:lang" event) to draw it again.
 */
export function setLang(next) {
  current = next === "en" ? "en" : "ja";
  remember(LANG_KEY, current);
  document.documentElement.lang = current;
  for (const el of document.querySelectorAll("[data-en]")) {
    if (el.dataset.ja === undefined) el.dataset.ja = el.textContent;
    el.textContent = current === "en" ? el.dataset.en : el.dataset.ja;
  }
  for (const el of document.querySelectorAll("[data-en-aria-label]")) {
    if (el.dataset.jaAriaLabel === undefined) el.dataset.jaAriaLabel = el.getAttribute("aria-label");
    el.setAttribute("aria-label", current === "en" ? el.dataset.enAriaLabel : el.dataset.jaAriaLabel);
  }
  const toggle = document.getElementById("toggle-lang");
  if (toggle) {
    toggle.textContent = current === "en" ? "日本語" : "English";
    toggle.lang = current === "en" ? "ja" : "en";
  }
  window.dispatchEvent(new CustomEvent("shomei:lang", { detail: { lang: current } }));
}

/** Large text on or off (the <html> class "large"). */
export function setLarge(on) {
  document.documentElement.classList.toggle("large", on);
  remember(LARGE_KEY, on ? "1" : "0");
  const toggle = document.getElementById("toggle-large");
  if (toggle) toggle.setAttribute("aria-pressed", on ? "true" : "false");
}

/** Apply ?lang= (else the remembered language) and the remembered text size. */
export function initPreferences() {
  const asked = new URLSearchParams(location.search).get("lang");
  setLang(asked === "en" || asked === "ja" ? asked : stored(LANG_KEY) || "ja");
  setLarge(stored(LARGE_KEY) === "1");
}
