// The titles and claim labels (ja, en) of the document types a wallet receives, from
// credentials/doctypes/*.metadata.json (tests/wallet/test_app.py keeps them in step).
// A nested claim's key is its path joined by dots, array items as "*".
export const TYPES = {
 "juminhyo": {
  "title": {
   "ja": "住民票の写し",
   "en": "Certificate of residence"
  },
  "claims": {
   "family_name": {
    "ja": "氏",
    "en": "Family name"
   },
   "given_name": {
    "ja": "名",
    "en": "Given name"
   },
   "family_name_kana": {
    "ja": "氏（フリガナ）",
    "en": "Family name (katakana)"
   },
   "given_name_kana": {
    "ja": "名（フリガナ）",
    "en": "Given name (katakana)"
   },
   "birthdate": {
    "ja": "生年月日",
    "en": "Date of birth"
   },
   "sex": {
    "ja": "性別",
    "en": "Sex"
   },
   "address": {
    "ja": "住所",
    "en": "Address"
   },
   "head_of_household": {
    "ja": "世帯主",
    "en": "Head of household"
   },
   "relationship_to_head": {
    "ja": "続柄",
    "en": "Relationship to head of household"
   },
   "resident_since": {
    "ja": "住民となった年月日",
    "en": "Resident since"
   },
   "address_since": {
    "ja": "住所を定めた年月日",
    "en": "Address established on"
   },
   "notified_on": {
    "ja": "届出日",
    "en": "Notified on"
   },
   "previous_address": {
    "ja": "前住所",
    "en": "Previous address"
   },
   "registered_domicile": {
    "ja": "本籍",
    "en": "Registered domicile (honseki)"
   },
   "domicile_head": {
    "ja": "筆頭者",
    "en": "Head of family register"
   }
  }
 },
 "partnership": {
  "title": {
   "ja": "パートナーシップ宣誓書受領証",
   "en": "Partnership declaration certificate"
  },
  "claims": {
   "holder_family_name": {
    "ja": "本人の氏",
    "en": "Holder's family name"
   },
   "holder_given_name": {
    "ja": "本人の名",
    "en": "Holder's given name"
   },
   "holder_birthdate": {
    "ja": "本人の生年月日",
    "en": "Holder's date of birth"
   },
   "partner_family_name": {
    "ja": "パートナーの氏",
    "en": "Partner's family name"
   },
   "partner_given_name": {
    "ja": "パートナーの名",
    "en": "Partner's given name"
   },
   "partner_birthdate": {
    "ja": "パートナーの生年月日",
    "en": "Partner's date of birth"
   },
   "declared_on": {
    "ja": "宣誓日",
    "en": "Date of declaration"
   },
   "certificate_number": {
    "ja": "受領証番号",
    "en": "Certificate number"
   },
   "address": {
    "ja": "住所",
    "en": "Address"
   },
   "children": {
    "ja": "子（ファミリーシップ）",
    "en": "Children (familyship)"
   },
   "children.*.family_name": {
    "ja": "子の氏",
    "en": "Child's family name"
   },
   "children.*.given_name": {
    "ja": "子の名",
    "en": "Child's given name"
   },
   "children.*.birthdate": {
    "ja": "子の生年月日",
    "en": "Child's date of birth"
   },
   "recognized_by": {
    "ja": "連携自治体",
    "en": "Recognised by"
   }
  }
 }
};

/** The label of a claim (`path` like "children.*.given_name"), else the path. */
export function label(docType, path, lang) {
  const entry = TYPES[docType] && TYPES[docType].claims[path];
  return entry ? entry[lang] || entry.ja : path;
}

/** The title of a document type in `lang`, else the type's name. */
export function title(docType, lang) {
  const entry = TYPES[docType];
  return entry ? entry.title[lang] || entry.title.ja : docType;
}
