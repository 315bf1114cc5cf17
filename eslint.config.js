// ESLint (flat config) for the project's own JavaScript: the wallet's ES modules and
// service worker, and the issuer's and verifier's page scripts. `make lint` runs it.
"use strict";

const js = require("@eslint/js");
const globals = require("globals");

module.exports = [
  {
    ignores: ["node_modules/", ".venv/", "build/", "dist/", "data/", "demo-out/", "**/*.egg-info/"],
  },
  js.configs.recommended,
  {
    linterOptions: { reportUnusedDisableDirectives: "error" },
  },
  {
    files: ["wallet_demo/static/js/**/*.js"],
    languageOptions: { ecmaVersion: "latest", sourceType: "module", globals: globals.browser },
  },
  {
    files: ["wallet_demo/static/sw.js"],
    languageOptions: { ecmaVersion: "latest", sourceType: "script", globals: globals.serviceworker },
  },
  {
    files: ["issuer/static/**/*.js", "verifier/static/**/*.js"],
    languageOptions: { ecmaVersion: "latest", sourceType: "script", globals: globals.browser },
  },
  {
    files: ["tests/**/*.mjs"],
    languageOptions: { ecmaVersion: "latest", sourceType: "module", globals: globals.node },
  },
  {
    files: ["eslint.config.js"],
    languageOptions: { ecmaVersion: "latest", sourceType: "commonjs", globals: globals.node },
  },
];
