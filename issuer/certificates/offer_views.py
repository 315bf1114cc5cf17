"""The offer on the certificate's page: the QR code and the tx_code the wallet needs.

The server keeps only their hashes; the page's copy travels sealed (the storage key,
AES-GCM) in the clerk's session cookie until the offer is used or expires, so reloading
the page still shows it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from flask import session as cookie

from credentials import qr
from credentials.encoding import b64d, b64e
from issuer.keys.service import City
from issuer.oid4vci.models import OFFERED
from issuer.oid4vci.protocol import NewOffer

_COOKIE_KEY = "oid4vci_offer"


@dataclass(frozen=True, kw_only=True, repr=False)
class OfferView:
    """What ``_offer.html`` shows: the state, and the QR code and tx_code while the
    offer waits for the wallet."""

    public_id: str
    state: str
    expires_at: float | None = None
    uri: str | None = None
    qr: str | None = None  # a data: URL of the PNG
    tx_code: str | None = None


def keep(new: NewOffer, *, city: City) -> None:
    """Seal what the page shows of ``new`` into the clerk's session cookie."""
    shown = json.dumps({"uri": new.uri, "tx_code": new.tx_code, "expires_at": new.expires_at})
    sealed = city.seal(shown.encode(), context=_context(new.public_id))
    cookie[_COOKIE_KEY] = {"id": new.public_id, "sealed": b64e(sealed)}


def _context(offer_id: str) -> bytes:
    return b"offer-page:" + offer_id.encode()


def offer_view(offer_id: str, state: str, *, city: City) -> OfferView:
    """The offer as the page shows it: with its QR code and tx_code only while it waits
    and the cookie holds an unaltered copy."""
    stored = cookie.get(_COOKIE_KEY)
    if state != OFFERED or not isinstance(stored, dict) or stored.get("id") != offer_id:
        if isinstance(stored, dict) and stored.get("id") == offer_id:
            cookie.pop(_COOKIE_KEY)  # used or expired: the page no longer needs it
        return OfferView(public_id=offer_id, state=state)
    try:
        plain = city.unseal(b64d(stored["sealed"]), context=_context(offer_id))
        shown = json.loads(plain)
    except (InvalidTag, KeyError, TypeError, ValueError):  # altered: show the state only
        return OfferView(public_id=offer_id, state=state)
    png = qr.render_png(shown["uri"], scale=5)
    return OfferView(
        public_id=offer_id,
        state=state,
        expires_at=shown["expires_at"],
        uri=shown["uri"],
        qr="data:image/png;base64," + base64.b64encode(png).decode("ascii"),
        tx_code=shown["tx_code"],
    )
