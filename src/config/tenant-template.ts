// A new tenant's file: the seed guide's column order, or a mapping guessed from a sample file's header names.
import type { FileType } from '../model.js';

export const SEED_HEADERS: Record<FileType, string[]> = {
  users: ['Unique ID', 'Firstname', 'Lastname', 'Username', 'Email', 'Phone', 'Title', 'Birthday', 'EmployedSince', 'EmployedUntil', 'Gender', 'Group member', 'Group admin', 'Segment', 'Status', 'Language'],
  groups: ['Group name', 'GroupID', 'Parent groupID'],
  segments: ['SegmentName', 'SegmentID'],
};

export const SEED_COLUMNS: Record<FileType, string[]> = {
  users: ['externalId', 'firstName', 'lastName', 'username', 'email', 'phone', 'title', 'birthday', 'employedSince', 'employedUntil', 'gender', 'memberOf', 'adminOf', 'segments', 'status', 'language'],
  groups: ['name', 'externalId', 'parentId'],
  segments: ['name', 'externalId'],
};

export const DEFAULT_PATTERNS: Record<FileType, string> = { users: '*user*.csv', groups: '*group*.csv', segments: '*segment*.csv' };

/** Header names (lower-case letters and digits only) that commonly mean a user field. */
const USER_SYNONYMS: Record<string, string[]> = {
  externalId: ['uniqueid', 'externalid', 'id', 'employeeid', 'employeenumber', 'userid', 'personid', 'anstallningsnummer'],
  firstName: ['firstname', 'givenname', 'forename', 'fornamn'],
  lastName: ['lastname', 'surname', 'familyname', 'efternamn'],
  username: ['username', 'login', 'userprincipalname', 'upn', 'anvandarnamn'],
  email: ['email', 'mail', 'emailaddress', 'epost'],
  phone: ['phone', 'mobile', 'telephone', 'phonenumber', 'mobilephone', 'telefon'],
  title: ['title', 'jobtitle', 'position', 'befattning', 'titel'],
  birthday: ['birthday', 'birthdate', 'dateofbirth', 'fodelsedatum'],
  employedSince: ['employedsince', 'startdate', 'hiredate', 'employmentstart', 'anstalldfrom'],
  employedUntil: ['employeduntil', 'enddate', 'terminationdate', 'employmentend', 'anstalldtill'],
  gender: ['gender', 'sex', 'kon'],
  // Only names that mean group IDs: "Department" or "Manager" columns usually hold names or people, not group IDs.
  memberOf: ['groupmember', 'groups', 'group', 'memberof', 'groupid', 'groupids', 'grupp'],
  adminOf: ['groupadmin', 'adminof', 'groupadmins'],
  segments: ['segment', 'segments', 'segmentid', 'segmentids'],
  status: ['status', 'active', 'state'],
  language: ['language', 'locale', 'lang', 'sprak'],
};

const normalize = (h: string) => h.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase().replace(/[^a-z0-9]/g, '');

/** Maps each header name to a user field it plainly means, or `ignore`; each field is used once. */
export function guessUserColumns(header: string[]): string[] {
  const used = new Set<string>();
  return header.map((h) => {
    const n = normalize(h);
    const field = Object.keys(USER_SYNONYMS).find((f) => !used.has(f) && USER_SYNONYMS[f].includes(n));
    if (!field) return 'ignore';
    used.add(field);
    return field;
  });
}
