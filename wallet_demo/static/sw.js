// The wallet's service worker: keeps the app shell (page, scripts, styles, icons, the
// document types' metadata) so the wallet opens, labelled, offline once it has been
// loaded. It caches only what the server
// serves to everyone; certificates live in IndexedDB, never in this cache, and
// requests to other origins (the issuer), to /api/ and to /relay/ are not touched.
const VERSION = "__SHELL_VERSION__";
const SHELL = ["__SHELL_URLS__"];
const CACHE = `shomei-wallet-shell-${VERSION}`;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) =>
        Promise.all(
          names
            .filter((n) => n.startsWith("shomei-wallet-shell-") && n !== CACHE)
            .map((n) => caches.delete(n)),
        ),
      )
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/api/") || url.pathname.startsWith("/relay/")) return;
  // Network first (updates arrive when online), the cached shell when offline. A
  // page opened with ?credential_offer=… or ?lang=en is still the same shell.
  event.respondWith(
    fetch(request)
      .then((response) => {
        if (response.ok && SHELL.includes(url.pathname)) {
          const copy = response.clone();
          const key = request.mode === "navigate" ? "/" : url.pathname;
          caches.open(CACHE).then((cache) => cache.put(key, copy));
        }
        return response;
      })
      .catch(() =>
        caches
          .match(request.mode === "navigate" ? "/" : url.pathname, { cacheName: CACHE })
          .then((hit) => hit || Response.error()),
      ),
  );
});
