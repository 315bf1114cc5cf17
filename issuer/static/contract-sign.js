// The contractor's signature on the contract page (/contract-sign/<token>).
// A P-256 key is made with WebCrypto at first use, its private half non-extractable and
// kept in this browser's IndexedDB; its public JWK is registered with the city. The
// agreement is a compact JWS (ES256, typ shomei-contract-agreement+jwt) over the
// contract's digest, number, the role "contractor", the time and the server's nonce.
// After a lost key was revoked, the key link page (/contractor-key/<token>) makes and
// registers the new key the same way; the signing page then finds it in IndexedDB.
"use strict";

(function () {
  const DB = "shomei-contract-keys";
  const STORE = "keys";
  const section = document.getElementById("sign") || document.getElementById("register-key");
  if (!section) return;
  const registerOnly = section.id === "register-key";
  const agree = document.getElementById("agree");
  const button = document.getElementById(registerOnly ? "register-button" : "sign-button");
  const status = document.getElementById(registerOnly ? "register-status" : "sign-status");
  const data = section.dataset;

  function say(text, isError) {
    status.textContent = text;
    status.className = isError ? "field-error" : "";
  }

  function b64url(bytes) {
    let s = "";
    for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function b64urlText(text) {
    return b64url(new TextEncoder().encode(text));
  }

  async function thumbprint(jwk) {
    // RFC 7638: the required members in lexicographic order, no spaces.
    const canonical = `{"crv":"${jwk.crv}","kty":"${jwk.kty}","x":"${jwk.x}","y":"${jwk.y}"}`;
    return b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical)));
  }

  function openDb() {
    return new Promise((resolve, reject) => {
      const req = indexedDB.open(DB, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }

  async function withStore(mode, action) {
    const db = await openDb();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = action(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error);
    });
  }

  async function publicJwk(publicKey) {
    const jwk = await crypto.subtle.exportKey("jwk", publicKey);
    return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
  }

  async function post(url, fields) {
    const body = new URLSearchParams({ csrf_token: data.csrf, ...fields });
    const response = await fetch(url, {
      method: "POST",
      body,
      headers: { Accept: "application/json", "X-CSRF-Token": data.csrf },
      credentials: "same-origin",
    });
    let answer;
    try {
      answer = await response.json();
    } catch {
      answer = {};
    }
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
    return answer;
  }

  async function keyPair() {
    const registered = data.registered ? JSON.parse(data.registered) : null;
    if (registered) {
      // IndexedDB keys are the thumbprints of the public keys.
      const id = await thumbprint(registered);
      const pair = await withStore("readonly", (s) => s.get(id));
      if (!pair) throw new Error(data.msgNokey);
      return { pair, jwk: registered };
    }
    return newKey();
  }

  async function newKey() {
    const pair = await crypto.subtle.generateKey(
      { name: "ECDSA", namedCurve: "P-256" },
      false, // the private key never leaves this browser
      ["sign", "verify"],
    );
    const jwk = await publicJwk(pair.publicKey);
    const id = await thumbprint(jwk);
    await withStore("readwrite", (s) => s.put(pair, id));
    await post(data.keyUrl, { jwk: JSON.stringify(jwk) });
    data.registered = JSON.stringify(jwk);
    return { pair, jwk };
  }

  async function sign() {
    const expected = JSON.parse(data.expected);
    const { pair, jwk } = await keyPair();
    const header = { alg: "ES256", typ: "shomei-contract-agreement+jwt", jwk };
    const payload = { ...expected, iat: Math.floor(Date.now() / 1000) };
    const input = `${b64urlText(JSON.stringify(header))}.${b64urlText(JSON.stringify(payload))}`;
    const signature = await crypto.subtle.sign(
      { name: "ECDSA", hash: "SHA-256" },
      pair.privateKey,
      new TextEncoder().encode(input),
    );
    return `${input}.${b64url(signature)}`;
  }

  async function prepare() {
    if (!window.crypto || !crypto.subtle || !window.indexedDB) {
      say(data.msgUnsupported, true);
      button.disabled = true;
      return false;
    }
    return true;
  }

  function registerKey() {
    button.addEventListener("click", async () => {
      button.disabled = true;
      say(data.msgWorking, false);
      try {
        await newKey();
        say(data.msgDone, false);
        section.dataset.done = "1";
      } catch (e) {
        say(e.message, true);
        button.disabled = false;
      }
    });
  }

  prepare().then((ok) => {
    if (!ok) return;
    if (registerOnly) {
      registerKey();
      return;
    }
    agree.addEventListener("change", () => {
      button.disabled = !agree.checked;
    });
    button.addEventListener("click", async () => {
      button.disabled = true;
      say(data.msgWorking, false);
      try {
        const agreement = await sign();
        await post(data.signUrl, { agreement });
        say(data.msgDone, false);
        section.dataset.signed = "1";
      } catch (e) {
        say(e.message, true);
        button.disabled = !agree.checked;
      }
    });
  });
})();
