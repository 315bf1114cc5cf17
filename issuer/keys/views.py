"""The supervisor's page for the city's signing key: its state here and on chain, and
its rotation (see :mod:`issuer.key_rotation`)."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

import issuer.keys.chain_access as chain_access
import issuer.keys.rotation as key_rotation
from credentials.errors import ShomeiError
from issuer.accounts.models import SUPERVISOR
from issuer.audit import service as audit
from issuer.city import city
from issuer.city import resource as city_resource
from issuer.db import get_session
from issuer.web.auth import role_required
from issuer.web.i18n import t

bp = Blueprint("keys", __name__, url_prefix="/keys")


@bp.get("/")
@role_required(SUPERVISOR)
def index() -> ResponseReturnValue:
    return _page()


@bp.post("/rotate")
@role_required(SUPERVISOR)
def rotate() -> ResponseReturnValue:
    if request.form.get("confirm") != "1":
        flash(t("確認欄にチェックを入れてください", "Tick the confirmation box first"), "error")
        return _page(), 400
    config = current_app.config
    try:
        chain = chain_access.chain_for(config, chain_access.anchor_account(config))
        result = key_rotation.rotate(
            config["DATA_DIR"],
            passphrase=_passphrase(),
            chain=chain,  # type: ignore[arg-type]  # every configured backend is a Web3Chain
            now=time.time(),
            grace=key_rotation.grace_seconds(config),
        )
    except ShomeiError as e:
        ja, en = f"署名鍵を更新できませんでした: {e.ja}", f"The key was not rotated: {e.en}"
        flash(t(ja, en), "error")
        return _page(), 400
    city_resource().reload()  # sign with the new key from the next request
    audit.record_committed(
        get_session(),
        actor=g.user.username,
        action=audit.KEY_ROTATED,
        target=f"issuer:{city().issuer_id}",
        details={"key_id": result.new_kid, "old_key_id": result.old_kid, "tx": result.add_tx},
        now=time.time(),
    )
    flash(t("署名鍵を更新しました", "The signing key was rotated"), "info")
    if result.revoke_error:
        ja, en = result.revoke_error
        flash(t(f"{ja}（後でもう一度お試しください）", f"{en} (try again later)"), "error")
    return redirect(url_for("keys.index"), 303)


@bp.post("/retire/<kid>")
@role_required(SUPERVISOR)
def retire(kid: str) -> ResponseReturnValue:
    """Send the revocation of a retired key again (when it failed at the rotation)."""
    config = current_app.config
    retired = next((r for r in city().retired if r.kid == kid), None)
    if retired is None:
        flash(t("その鍵は退役済みの鍵ではありません", "that key is not a retired key"), "error")
        return redirect(url_for("keys.index"), 303)
    try:
        revoked_at = int(retired.retired_at) + key_rotation.grace_seconds(config)
        chain = chain_access.chain_for(config, chain_access.anchor_account(config))
        key_rotation.retire_on_chain(chain, kid, revoked_at=revoked_at)  # type: ignore[arg-type]
    except ShomeiError as e:
        flash(t(e.ja, e.en), "error")
        return _page(), 400
    flash(t("旧署名鍵の取り消しを登録しました", "The old key's revocation was recorded"), "info")
    return redirect(url_for("keys.index"), 303)


def _page() -> str:
    issuer = city()
    record, chain_error = _chain_state(issuer.issuer_id)
    on_chain: dict[str, Any] = {
        kid: key_rotation.on_chain_key(record, kid)
        for kid in (issuer.key.kid, *(r.kid for r in issuer.retired))
    }
    return render_template(
        "issuer/keys/index.html",
        city=issuer,
        record=record,
        on_chain=on_chain,
        chain_error=chain_error,
    )


def _chain_state(issuer_id: str) -> tuple[Any, tuple[str, str] | None]:
    """(the city's registry entry or None, None) or (None, (ja, en) why it is unknown)."""
    try:
        return chain_access.chain_for(current_app.config, None).issuer_by_id(issuer_id), None
    except ShomeiError as e:
        return None, (e.ja, e.en)


def _passphrase() -> str | None:
    """The passphrase the app opens the key with."""
    return city_resource().passphrase
