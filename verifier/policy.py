"""The verification procedure: one numbered checklist, one result.

Pure: given a trust source (trust file or on-chain registry), and optionally a status
fetcher and an anchor checker, it neither touches the network nor reads the clock
itself. Each step becomes one entry of the result's ``checks`` (DESIGN §5); the verdict
is ``valid`` only when no check fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from anchor import evidence as anchor_evidence
from anchor import merkle
from anchor.chain import AnchorRecord, ChainUnavailable
from credentials import doctypes, sdjwt
from credentials.encoding import JST
from credentials.errors import ShomeiError
from credentials.trust import IssuerInfo, TrustSource

from . import agreements as agreements_mod
from . import documents, entries
from .agreements import AgreementCheck
from .results import CHECK_IDS, Check, Report, VerificationResult

__all__ = [
    "CHECK_IDS",
    "AnchorSource",
    "Check",
    "StatusFetcher",
    "VerificationResult",
    "Verifier",
]


class _Stopped(Exception):
    """A step after which nothing more can be checked: carries the finished result."""

    def __init__(self, result: VerificationResult) -> None:
        super().__init__()
        self.result = result


class StatusFetcher(Protocol):
    """Returns the status value (0 valid, 1 revoked, 2 suspended) for a status reference
    ``{"status_list": {"idx": …, "uri": …}}``; the list must be signed by ``issuer``.
    Raises :class:`ShomeiError` when the status cannot be told."""

    def __call__(self, ref: dict[str, Any], *, issuer: str | None = None) -> int: ...


class AnchorSource(Protocol):
    """Reads anchors for the anchor check (the on-chain registry)."""

    chain_id: int

    def anchor_of(self, iss: str, root: bytes) -> AnchorRecord | None: ...


@dataclass(frozen=True)
class Verifier:
    """Runs the checklist. Keyword-only: ``Verifier(trust=TrustList.load(...))``."""

    trust: TrustSource
    anchors: AnchorSource | None = None
    status_fetcher: StatusFetcher | None = None
    max_size: int = sdjwt.DEFAULT_MAX_SIZE
    skew: int = sdjwt.DEFAULT_SKEW

    def verify(
        self,
        presentation: str,
        *,
        now: float,
        nonce: str | None = None,
        aud: str | None = None,
        document: bytes | None = None,
        evidence: bytes | None = None,
        agreement_tokens: Sequence[str] = (),
        document_revisions: Sequence[int] = (),
    ) -> VerificationResult:
        """Verify a presentation (or a whole SD-JWT VC) at time ``now``; ``evidence`` is
        the anchor evidence that came with it (the QR container's evidence field);
        ``document`` the contract PDF's bytes, ``document_revisions`` the lengths of its
        earlier revisions that later ones change only by adding attachments (the
        original may be one: a PDF that carries its own credential), and
        ``agreement_tokens`` the parties' agreement JWSs that came with it.

        Never raises for bad input: every problem becomes a failed check.
        """
        r = Report()
        try:
            # (1) format: the SD-JWT splits, its JWT parses, and its type is one we know.
            parsed, iss, doc_type = self._check_format(r, presentation)
            # (2) issuer: only issuers in the trust source count; the token names itself.
            info = self._check_issuer(r, iss, doc_type)
            # (3) signature: header (ES256, typ, no crit) and the issuer's registered key.
            payload = self._check_signature(r, parsed, doc_type, info)
        except _Stopped as stopped:
            return stopped.result
        # (4) disclosures: every disclosure is signed for, none twice, none overwriting.
        claims = self._check_disclosures(r, parsed, payload)
        # (5) anchor: the receipt leads from this credential to a root on chain; the
        # signing key must have been valid when that root was anchored.
        record = self._check_anchor(r, parsed, iss, evidence)
        self._check_key_window(r, parsed, iss, record, now)
        # (6) status: the issuer's token status list, when the credential names one.
        self._check_status(r, payload, iss)
        # (7) validity: iat, nbf and exp against the clock passed in.
        self._check_validity(r, payload, now)
        # (8) holder: a key-binding JWT proves the presenter holds the wallet key.
        self._check_holder(r, parsed, payload, now=now, nonce=nonce, aud=aud)
        # (9) document: a dropped contract PDF against the signed document digest, and
        # the parties' agreements (signatures over that digest).
        agreed = self._check_agreements(claims, doc_type, iss, agreement_tokens)
        original = documents.original_length(claims, document, document_revisions)
        self._check_document(r, claims, document, agreed, original)
        disclosed = r.entries["disclosures"].status == "pass"
        return VerificationResult(
            checks=r.finish("確認していません", "not checked"),
            document_type=doc_type.name,
            issuer=info,
            # Schema order, not digest order: 氏, 名, フリガナ… as on the paper certificate.
            disclosed={k: claims[k] for k in entries.display_order(doc_type.name, tuple(claims))}
            if disclosed
            else {},
            anchor=self._anchor_json(record),
            agreements=agreed if disclosed else None,
            document=documents.document_json(claims, document, original),
        )

    def _check_format(
        self, r: Report, presentation: str
    ) -> tuple[sdjwt.ParsedSdJwt, str, doctypes.DocumentType]:
        stop = ("形式が不正なため確認していません", "not checked: malformed input")
        try:
            parsed = sdjwt.ParsedSdJwt.parse(presentation, max_size=self.max_size)
            vct = sdjwt.check_vct(parsed.unverified_payload)
        except ShomeiError as e:
            r.fail("format", e)
            raise _Stopped(VerificationResult(checks=r.finish(*stop))) from None
        iss = parsed.unverified_payload.get("iss")
        iss = iss if isinstance(iss, str) else ""
        doc_type = doctypes.from_vct(vct, iss)
        if doc_type is None:
            ja, en = (
                f"対応していない証明書の種類です（{vct}）",
                f"unsupported credential type ({vct})",
            )
            r.add("format", "fail", ja, en)
            raise _Stopped(VerificationResult(checks=r.finish(*stop)))
        r.put(entries.format_pass(doc_type.name))
        return parsed, iss, doc_type

    def _check_issuer(self, r: Report, iss: str, doc_type: doctypes.DocumentType) -> IssuerInfo:
        try:
            info = self.trust.issuer(iss)
        except ShomeiError as e:  # the registry could not be read (chain unreachable)
            ja, en = f"発行者を確認できません: {e.ja}", f"cannot check the issuer: {e.en}"
            info = None
        else:
            ja, en = f"信頼された発行者ではありません（{iss}）", f"not a trusted issuer ({iss})"
        if info is None:
            r.add("issuer", "fail", ja, en)
            stop = ("発行者を確認できないため確認していません", "not checked: unknown issuer")
            result = VerificationResult(checks=r.finish(*stop), document_type=doc_type.name)
            raise _Stopped(result)
        r.put(entries.issuer_pass(info.name, info.municipality_code))
        return info

    def _check_signature(
        self,
        r: Report,
        parsed: sdjwt.ParsedSdJwt,
        doc_type: doctypes.DocumentType,
        info: IssuerInfo,
    ) -> dict[str, Any]:
        try:
            payload = sdjwt.verify_issuer_signature(parsed, self.trust.resolve_key)
        except ShomeiError as e:
            r.fail("signature", e)
            stop = ("署名が確認できないため確認していません", "not checked: bad signature")
            result = VerificationResult(
                checks=r.finish(*stop), document_type=doc_type.name, issuer=info
            )
            raise _Stopped(result) from None
        r.put(entries.SIGNATURE_PASS)
        return payload

    def _check_disclosures(
        self, r: Report, parsed: sdjwt.ParsedSdJwt, payload: dict[str, Any]
    ) -> dict[str, Any]:
        try:
            claims = sdjwt.apply_disclosures(payload, parsed.disclosures)
        except ShomeiError as e:
            r.fail("disclosures", e)
            return {}
        r.put(entries.disclosures_pass(len(parsed.disclosures)))
        return claims

    def _check_validity(self, r: Report, payload: dict[str, Any], now: float) -> None:
        try:
            sdjwt.check_validity(payload, now=now, skew=self.skew)
        except ShomeiError as e:
            r.fail("validity", e)
            return
        r.put(entries.validity_pass(payload))

    def _check_agreements(
        self,
        claims: dict[str, Any],
        doc_type: doctypes.DocumentType,
        iss: str,
        tokens: Sequence[str],
    ) -> tuple[AgreementCheck, ...] | None:
        if not claims or doc_type.name != "contract":
            return None
        return agreements_mod.check_agreements(
            claims,
            issuer=iss,
            tokens=tokens,
            issuer_key=agreements_mod.issuer_key_lookup(
                lambda kid: self.trust.resolve_key(iss, kid)
            ),
        )

    def _check_anchor(
        self, r: Report, parsed: sdjwt.ParsedSdJwt, iss: str, evidence: bytes | None
    ) -> AnchorRecord | None:
        if self.anchors is None:
            r.put(entries.NO_ANCHOR)
            return None
        if evidence is None:
            r.add(
                "anchor",
                "warn",
                "ブロックチェーンへの記録の証明が添付されていません（発行直後の可能性があります）",
                "no anchor evidence came with it (it may have been issued moments ago)",
            )
            return None
        try:
            receipt = anchor_evidence.decode(evidence)
            root = merkle.root_from_inclusion(merkle.leaf_hash(parsed.jwt), receipt)
            record = self.anchors.anchor_of(iss, root)
        except ChainUnavailable as e:
            r.add(
                "anchor", "warn", f"チェーンに接続できません: {e.ja}", f"chain unreachable: {e.en}"
            )
            return None
        except ShomeiError as e:
            r.fail("anchor", e)
            return None
        if record is None:
            r.add(
                "anchor",
                "fail",
                "この証明書の記録はブロックチェーン上に見つかりません",
                "this credential's anchor is not on the chain",
            )
            return None
        when = entries.jst(record.timestamp)
        r.add(
            "anchor",
            "pass",
            f"ブロック {record.block}（{when}）に記録されています",
            f"anchored in block {record.block} ({when})",
        )
        return record

    def _check_key_window(
        self,
        r: Report,
        parsed: sdjwt.ParsedSdJwt,
        iss: str,
        record: AnchorRecord | None,
        now: float,
    ) -> None:
        """A key revoked after the anchor leaves older credentials valid (the chain
        proves they existed before the compromise); revoked before, it does not."""
        issuer = r.entries.get("issuer")
        if issuer is None or issuer.status != "pass":
            return
        try:
            window = self.trust.key_window(iss, str(parsed.unverified_header.get("kid")))
        except ShomeiError as e:
            r.add(
                "issuer",
                "fail",
                f"鍵の有効期間を確認できません: {e.ja}",
                f"key validity unknown: {e.en}",
            )
            return
        if window is None:
            return
        valid_from, revoked_at = window
        # Anchor time and key times are both chain times; the verifier's own clock may
        # trail the chain's by a little, hence the skew for an unanchored credential.
        at = record.timestamp if record else now
        if at + (0 if record else self.skew) < valid_from:
            r.add(
                "issuer",
                "fail",
                f"署名鍵の有効開始（{entries.jst(valid_from)}）より前の記録です",
                f"anchored before the signing key became valid ({entries.jst(valid_from)})",
            )
        elif revoked_at is not None and at >= revoked_at:
            ja, en = (
                (
                    "署名鍵の取り消し後に記録されています",
                    "anchored after the signing key was revoked",
                )
                if record
                else ("署名鍵は取り消されています", "the signing key has been revoked")
            )
            r.add(
                "issuer",
                "fail",
                f"{ja}（{entries.jst(revoked_at)}）",
                f"{en} ({entries.jst(revoked_at)})",
            )

    def _anchor_json(self, record: AnchorRecord | None) -> dict[str, Any] | None:
        if record is None or self.anchors is None:
            return None
        return {
            "chain_id": self.anchors.chain_id,
            "block": record.block,
            "timestamp": datetime.fromtimestamp(record.timestamp, JST).isoformat(),
            "tx": record.tx,
        }

    def _check_status(self, r: Report, payload: dict[str, Any], iss: str) -> None:
        ref = payload.get("status")
        if ref is None:
            r.put(entries.NO_STATUS)
            return
        if not isinstance(ref, dict) or not isinstance(ref.get("status_list"), dict):
            r.add("status", "fail", "失効情報の参照が不正です", "malformed status reference")
            return
        if self.status_fetcher is None:
            r.add(
                "status",
                "warn",
                "失効状態を確認できませんでした（オフライン）",
                "revocation status unknown (offline)",
            )
            return
        try:
            # The list must come from this credential's issuer, not any trusted one.
            value = self.status_fetcher(ref, issuer=iss)
        except ShomeiError as e:
            r.add(
                "status",
                "warn",
                f"失効状態を確認できませんでした: {e.ja}",
                f"status unknown: {e.en}",
            )
            return
        if value == 0:
            r.add("status", "pass", "取り消されていません", "not revoked")
        elif value == 2:
            r.add("status", "fail", "一時停止中です", "suspended")
        else:
            r.add("status", "fail", "取り消し済みです", "revoked")

    def _check_holder(
        self,
        r: Report,
        parsed: sdjwt.ParsedSdJwt,
        payload: dict[str, Any],
        *,
        now: float,
        nonce: str | None,
        aud: str | None,
    ) -> None:
        # The caller asked for holder binding by giving a nonce or an audience: then a
        # key-binding JWT is required and checked against both (a missing one must be
        # present all the same, and ``iat`` fresh), never skipped for want of a nonce.
        asked = nonce is not None or aud is not None
        if parsed.kb_jwt is None and not asked:
            r.put(entries.NO_HOLDER_PROOF if "cnf" in payload else entries.NOT_BOUND)
            return
        try:
            sdjwt.verify_key_binding(parsed, payload, now=now, nonce=nonce, aud=aud, skew=self.skew)
            r.put(entries.HOLDER_PASS)
        except ShomeiError as e:
            r.fail("holder", e)

    @staticmethod
    def _check_document(
        r: Report,
        claims: dict[str, Any],
        document: bytes | None,
        agreed: tuple[AgreementCheck, ...] | None,
        original: int | None,
    ) -> None:
        failed = next((a for a in agreed or () if a.status == "fail"), None)
        if document is None and failed is None:
            r.put(entries.NO_DOCUMENT)
            return
        expected = claims.get("document_sha256")
        if document is None:
            pass
        elif not isinstance(expected, str):
            r.add(
                "document",
                "fail",
                "文書のハッシュ（document_sha256）が開示されていません",
                "the document digest (document_sha256) is not disclosed",
            )
            return
        elif original is None:
            r.add(
                "document",
                "fail",
                "原本と一致しません（PDFが契約時のものと異なります）",
                "the document does not match the original (the PDF differs from the one signed)",
            )
            return
        if failed is not None:
            r.add("document", "fail", failed.ja, failed.en)
        elif agreed and all(a.status == "pass" for a in agreed):
            r.add(
                "document",
                "pass",
                "原本と一致します（両当事者の署名を確認しました）",
                "the document matches the original (both parties' signatures verified)",
            )
        elif document is not None and original is not None and original < len(document):
            r.add(
                "document",
                "pass",
                f"原本と一致します（先頭 {original:,} バイトが原本で、その後に添付ファイルが"
                "追加されています）",
                f"the document matches the original (its first {original:,} bytes; "
                "attachments were added after them)",
            )
        else:
            r.add("document", "pass", "原本と一致します", "the document matches the original")
