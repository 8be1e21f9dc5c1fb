// Field-level validators and normalisers. Pure and cheap: they run for every cell of
// every row, so regexes are compiled once and language tags are cached.
import type { UserStatus } from '../model.js';

/** A tenant value map for one field, as a Map (no prototype keys, fast lookups). */
export type ValueMap = Map<string, string | null>;

export function toValueMap(map: Record<string, string | null> | undefined): ValueMap | undefined {
  if (map === undefined) return undefined;
  return new Map(Object.entries(map));
}

/**
 * Applies the tenant's map to a trimmed cell. Keys match the trimmed cell exactly
 * (case-sensitive: the tenant wrote the map for its source's exact values).
 * Returns null for an empty result.
 */
export function mapValue(raw: string, map: ValueMap | undefined): string | null {
  if (map !== undefined && map.has(raw)) {
    const mapped = map.get(raw);
    return mapped == null || mapped.trim() === '' ? null : mapped.trim();
  }
  return raw === '' ? null : raw;
}

/**
 * Splits a multi-valued cell: items trimmed, mapped, empties dropped, duplicates
 * dropped (first occurrence kept, order preserved).
 */
export function splitList(raw: string, separator: string, map: ValueMap | undefined): string[] {
  if (raw === '') return [];
  if (map === undefined && raw.indexOf(separator) === -1) return [raw]; // common single-value cell, already trimmed
  const parts = raw.split(separator);
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i].trim();
    const item = map === undefined ? (part === '' ? null : part) : mapValue(part, map);
    if (item !== null && !out.includes(item)) out.push(item);
  }
  return out;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

export type DateCheck = 'ok' | 'format' | 'calendar';

/** Digit value of the char at i, or -1 (char codes: no regex match objects per cell). */
function digit(s: string, i: number): number {
  const c = s.charCodeAt(i) - 48;
  return c >= 0 && c <= 9 ? c : -1;
}

/** `YYYY-MM-DD` and a real calendar date (2023-02-30 fails, 2024-02-29 passes). */
export function checkDate(value: string): DateCheck {
  if (value.length !== 10 || value.charCodeAt(4) !== 45 || value.charCodeAt(7) !== 45) return 'format';
  const y0 = digit(value, 0), y1 = digit(value, 1), y2 = digit(value, 2), y3 = digit(value, 3);
  const m0 = digit(value, 5), m1 = digit(value, 6), d0 = digit(value, 8), d1 = digit(value, 9);
  if ((y0 | y1 | y2 | y3 | m0 | m1 | d0 | d1) < 0) return 'format';
  const year = y0 * 1000 + y1 * 100 + y2 * 10 + y3;
  const month = m0 * 10 + m1;
  const day = d0 * 10 + d1;
  if (month < 1 || month > 12 || day < 1) return 'calendar';
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const max = month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1];
  return day <= max ? 'ok' : 'calendar';
}

// One @, a local part and a dotted domain, no whitespace anywhere (JS \s includes the
// non-breaking space that spreadsheets and web pages slip into addresses).
const EMAIL_RE = /^[^\s@]+@[^\s@.]+(?:\.[^\s@.]+)+$/;

export function isValidEmail(value: string): boolean {
  return EMAIL_RE.test(value);
}

/** Why an address failed, in words a customer can act on. */
export function emailHint(value: string): string {
  if (value.includes('\u00a0')) return 'the address contains a non-breaking space (often pasted from a web page or mail): retype it';
  if (/\s/.test(value)) return 'the address contains a space: remove it';
  const ats = value.split('@').length - 1;
  if (ats !== 1) return `an address has exactly one "@" (found ${ats})`;
  return 'use a full address such as anna.svensson@example.com';
}

const GENDERS = new Set(['male', 'female', 'other']);
/** Used only when the tenant has no value map for gender. */
const DEFAULT_GENDER: ReadonlyMap<string, string> = new Map([
  ['m', 'male'], ['male', 'male'],
  ['f', 'female'], ['female', 'female'],
  ['o', 'other'], ['other', 'other'], ['x', 'other'],
]);

/** Gender after the value map, or undefined when not acceptable. */
export function normalizeGender(value: string, tenantMapped: boolean): string | undefined {
  const lower = value.toLowerCase();
  if (tenantMapped) return GENDERS.has(lower) ? lower : undefined;
  return DEFAULT_GENDER.get(lower);
}

/** Status after the value map: active/inactive, any case. */
export function normalizeStatus(value: string): UserStatus | undefined {
  const lower = value.toLowerCase();
  return lower === 'active' || lower === 'inactive' ? lower : undefined;
}

// Primary language subtag limited to 2-3 letters (ISO 639): BCP 47 syntax would also
// accept 5-8 letter subtags, which lets words like "english" or "svenska" through.
const PRIMARY_RE = /^[A-Za-z]{2,3}(?:-|$)/;
const LANGUAGE_CACHE_MAX = 1000;
const languageCache = new Map<string, string | null>();

/** Canonical BCP 47 tag (`en-us` → `en-US`), or null when not a valid tag. Cached: languages repeat. */
export function canonicalLanguage(value: string): string | null {
  const cached = languageCache.get(value);
  if (cached !== undefined) return cached;
  let result: string | null = null;
  if (PRIMARY_RE.test(value)) {
    try {
      result = Intl.getCanonicalLocales(value)[0] ?? null;
    } catch {
      result = null; // RangeError: not a well-formed tag
    }
  }
  if (languageCache.size >= LANGUAGE_CACHE_MAX) languageCache.clear(); // bounded: a hostile file cannot grow it
  languageCache.set(value, result);
  return result;
}

export function languageHint(value: string): string {
  if (value.includes('_')) return `use a hyphen, not an underscore: "${value.replace(/_/g, '-')}"`;
  return 'use a BCP 47 language tag such as en-US, sv-SE or de';
}
