import { describe, expect, it } from 'vitest';
import {
  canonicalLanguage, checkDate, isValidEmail, mapValue, normalizeGender, normalizeStatus, splitList, toValueMap,
} from '../../src/parse/fields.js';

describe('field validators', () => {
  it('dates: YYYY-MM-DD and a real calendar date', () => {
    expect(checkDate('2024-02-29')).toBe('ok');
    expect(checkDate('2000-02-29')).toBe('ok');
    expect(checkDate('2023-02-30')).toBe('calendar');
    expect(checkDate('1900-02-29')).toBe('calendar');
    expect(checkDate('2023-13-01')).toBe('calendar');
    expect(checkDate('2023-04-31')).toBe('calendar');
    expect(checkDate('2023-00-10')).toBe('calendar');
    expect(checkDate('2023-01-00')).toBe('calendar');
    for (const bad of ['2023-1-05', '05/01/2023', '2023-01-05T00:00', '20230105', '2023-0a-05', '']) expect(checkDate(bad)).toBe('format');
  });

  it('email: one @, local part without spaces, dotted domain', () => {
    for (const ok of ['a@b.se', 'anna.svensson+hr@mail.example.com', 'o\'brien@example.ie']) expect(isValidEmail(ok)).toBe(true);
    for (const bad of ['[email\u00a0protected]', 'a@b', 'a@@b.se', 'a b@c.se', '@b.se', 'a@b.se ', 'a@.se', 'a@b..se', 'a@b.se\u00a0'])
      expect(isValidEmail(bad), bad).toBe(false);
  });

  it('language: canonical BCP 47 tags, cached; words and underscores rejected', () => {
    expect(canonicalLanguage('en-us')).toBe('en-US');
    expect(canonicalLanguage('EN-us')).toBe('en-US');
    expect(canonicalLanguage('sv')).toBe('sv');
    expect(canonicalLanguage('zh-hant-tw')).toBe('zh-Hant-TW');
    expect(canonicalLanguage('en-us')).toBe('en-US'); // from the cache
    for (const bad of ['sv_SE', 'english', 'x', 'en-', '12']) expect(canonicalLanguage(bad), bad).toBeNull();
  });

  it('gender: default map when the tenant has none; otherwise only male/female/other after the tenant map', () => {
    expect(['M', 'male', 'F', 'Female', 'o', 'X', 'Other'].map((g) => normalizeGender(g, false))).toEqual(['male', 'male', 'female', 'female', 'other', 'other', 'other']);
    expect(normalizeGender('1', false)).toBeUndefined();
    expect(normalizeGender('MALE', true)).toBe('male');
    expect(normalizeGender('M', true)).toBeUndefined();
  });

  it('status: active/inactive in any case', () => {
    expect(normalizeStatus('Active')).toBe('active');
    expect(normalizeStatus('INACTIVE')).toBe('inactive');
    expect(normalizeStatus('1')).toBeUndefined();
  });

  it('value maps and lists', () => {
    const map = toValueMap({ '1': 'male', _: null, ' ': '' });
    expect(mapValue('1', map)).toBe('male');
    expect(mapValue('_', map)).toBeNull();
    expect(mapValue('2', map)).toBe('2');
    expect(mapValue('', undefined)).toBeNull();
    expect(splitList(' a , b,,a , c ', ',', undefined)).toEqual(['a', 'b', 'c']);
    expect(splitList('a|b', '|', toValueMap({ a: 'A', b: null }))).toEqual(['A']);
    expect(splitList('', ',', undefined)).toEqual([]);
  });
});
