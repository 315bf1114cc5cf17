"""The verifier pages' words, Japanese first, English on ``?lang=en``."""

from __future__ import annotations

LANGS = ("ja", "en")

_TEXT: dict[str, tuple[str, str]] = {
    "app_name": ("証明書の確認", "Certificate check"),
    "scan_title": ("QRコードを読み取る", "Scan the QR code"),
    "scan_hint": (
        "証明書のQRコードをカメラに向けてください。",
        "Hold the certificate's QR code in front of the camera.",
    ),
    "start_camera": ("カメラを起動", "Start camera"),
    "stop_camera": ("カメラを停止", "Stop camera"),
    "camera_unavailable": (
        "カメラを使えません。画像を選ぶか、内容を貼り付けてください。",
        "The camera is not available. Choose an image or paste the contents instead.",
    ),
    "scanning": ("読み取り中…", "Scanning…"),
    "upload_title": ("画像・PDF・ファイルから確認", "Check an image, PDF or file"),
    "upload_hint": (
        "QRコードの写真やスクリーンショット、1ページ目にQRコードのあるPDF、証明書ファイル",
        "A photo or screenshot of the QR code, a PDF with the QR code on its first page, "
        "or a credential file",
    ),
    "paste_title": ("内容を貼り付けて確認", "Paste the contents"),
    "paste_hint": (
        "提示データ（SD-JWT）または SH1: で始まるQRコードの内容",
        "A presentation (SD-JWT) or a QR payload starting with SH1:",
    ),
    "verify": ("確認する", "Verify"),
    "valid": ("有効", "Valid"),
    "invalid": ("無効", "Invalid"),
    "revoked": ("取り消し済み", "Revoked"),
    "document_type": ("証明書の種類", "Document type"),
    "issuer": ("発行者", "Issuer"),
    "municipality_code": ("団体コード", "Municipality code"),
    "disclosed": ("開示された項目", "Disclosed claims"),
    "nothing_disclosed": ("開示された項目はありません", "No claims disclosed"),
    "anchor": ("ブロックチェーンへの記録", "Blockchain anchor"),
    "block": ("ブロック", "Block"),
    "time": ("日時", "Time"),
    "transaction": ("取引", "Transaction"),
    "chain_id": ("チェーンID", "Chain id"),
    "checks": ("確認項目", "Checks"),
    "status_pass": ("合格", "pass"),
    "status_fail": ("不合格", "fail"),
    "status_warn": ("注意", "warning"),
    "status_skip": ("未確認", "not checked"),
    "check_again": ("別の証明書を確認する", "Check another certificate"),
    "print": ("印刷", "Print"),
    "error_title": ("確認できませんでした", "Could not check"),
    "privacy": (
        "この確認サービスは確認した内容を保存しません。",
        "This service keeps nothing of what it checks.",
    ),
    "checked_at": ("確認日時", "Checked at"),
    "other_lang": ("English", "日本語"),
    "document_input": ("契約書PDF（原本の確認）", "Contract PDF (check the original)"),
    "document_hint": (
        "任意。契約書の証明書と一緒に選ぶと、PDFが原本と一致するか確認します。"
        "証明書が添付されたPDFだけでも確認できます。",
        "Optional. With a contract's credential, checks that the PDF is the original; "
        "a PDF carrying its credential as an attachment can be checked alone.",
    ),
    "original_match": ("原本と一致", "Matches the original"),
    "original_mismatch": ("原本と不一致", "Does not match the original"),
    "original_unknown": (
        "原本のハッシュが開示されていません",
        "The original's digest is not disclosed",
    ),
    "contract": ("契約の内容", "The contract"),
    "contract_title": ("件名", "Title"),
    "contract_number": ("契約番号", "Contract number"),
    "orderer": ("発注者", "Orderer"),
    "contractor": ("受注者", "Contractor"),
    "corporate_number": ("法人番号", "Corporate number"),
    "representative": ("代表者", "Representative"),
    "amount": ("契約金額", "Contract amount"),
    "tax_included": ("税込", "tax included"),
    "period": ("工期", "Construction period"),
    "site": ("工事場所", "Site"),
    "concluded_on": ("締結日", "Concluded on"),
    "signatures": ("当事者の署名", "The parties' signatures"),
    "party": ("当事者", "Party"),
    "signed_at": ("署名日時", "Signed at"),
    "key_thumbprint": ("鍵の指紋", "Key thumbprint"),
    "signature_check": ("署名の確認", "Signature check"),
    "party_orderer": ("発注者", "Orderer"),
    "party_contractor": ("受注者", "Contractor"),
}


def choose(lang: str | None) -> str:
    """Return ``"en"`` when asked for English, else ``"ja"``."""
    return "en" if (lang or "").lower().startswith("en") else "ja"


def text(key: str, lang: str) -> str:
    """Return the word ``key`` in ``lang``. Raises ``KeyError`` for an unknown key."""
    return _TEXT[key][LANGS.index(choose(lang))]
