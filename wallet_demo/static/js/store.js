// The wallet's storage: IndexedDB "shomei-wallet" (version 1) on this phone only.
// "credentials" holds certificate records (keyPath "id"); "keys" holds the holder
// keys as non-extractable CryptoKey objects (keyPath "id").
const DB_NAME = "shomei-wallet";
const DB_VERSION = 1;
let opened = null;

/** The database (opened once per page). Rejects when IndexedDB is unavailable. */
export function openDb() {
  if (!opened) {
    opened = new Promise((resolve, reject) => {
      if (typeof indexedDB === "undefined") {
        reject(new Error("IndexedDB is not available"));
        return;
      }
      const req = indexedDB.open(DB_NAME, DB_VERSION);
      req.onupgradeneeded = () => {
        const db = req.result;
        if (!db.objectStoreNames.contains("credentials")) {
          db.createObjectStore("credentials", { keyPath: "id" });
        }
        if (!db.objectStoreNames.contains("keys")) db.createObjectStore("keys", { keyPath: "id" });
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
      req.onblocked = () => reject(new Error("the wallet database is open in another tab"));
    });
    opened.catch(() => {
      opened = null;
    });
  }
  return opened;
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error("transaction aborted"));
  });
}

function result(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function put(storeName, value) {
  const db = await openDb();
  const tx = db.transaction(storeName, "readwrite");
  tx.objectStore(storeName).put(value);
  await done(tx);
  return value;
}

async function get(storeName, id) {
  const db = await openDb();
  const value = await result(db.transaction(storeName).objectStore(storeName).get(id));
  return value === undefined ? null : value;
}

/** Store (insert or replace) a certificate record; resolves to the record. */
export function putCredential(rec) {
  return put("credentials", rec);
}

/** The record with this id, or null. */
export function getCredential(id) {
  return get("credentials", id);
}

/** Every record, newest (receivedAt) first. */
export async function listCredentials() {
  const db = await openDb();
  const all = await result(db.transaction("credentials").objectStore("credentials").getAll());
  return all.sort((a, b) => (b.receivedAt || 0) - (a.receivedAt || 0));
}

/** Delete a record and its holder key (one transaction). */
export async function deleteCredential(id) {
  const db = await openDb();
  const tx = db.transaction(["credentials", "keys"], "readwrite");
  const credentials = tx.objectStore("credentials");
  const rec = await result(credentials.get(id));
  credentials.delete(id);
  if (rec && rec.keyId) tx.objectStore("keys").delete(rec.keyId);
  await done(tx);
}

/** Store a holder key record `{id, privateKey, publicKey, publicJwk, createdAt}`. */
export function putKey(rec) {
  return put("keys", rec);
}

/** The holder key record with this id, or null. */
export function getKey(id) {
  return get("keys", id);
}

/** Delete a holder key (used when receiving fails after the key was made). */
export async function deleteKey(id) {
  const db = await openDb();
  const tx = db.transaction("keys", "readwrite");
  tx.objectStore("keys").delete(id);
  await done(tx);
}
