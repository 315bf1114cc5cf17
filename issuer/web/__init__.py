"""The edges of the issuer's pages: sign-in, CSRF, language, error pages, headers.

Import the module you need (``issuer.web.auth``, ``issuer.web.i18n`` ...)."""
