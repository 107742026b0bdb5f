import { apiErrors } from './errors';
import type { StripeObject } from './store';

/**
 * A subset of Stripe's Search Query Language (https://docs.stripe.com/search#search-query-language):
 * clauses `field:'value'` (exact, case-insensitive for strings like Stripe's), `field~'value'`
 * (substring, at least 3 characters), `metadata['key']:'value'`, a leading `-` negates, joined
 * by all-`AND` or all-`OR` (Stripe refuses to mix them). Numeric comparisons and other fields
 * are refused with an explicit error rather than matched loosely.
 */
export interface SearchClause {
  readonly field: string;
  readonly metadataKey?: string;
  readonly op: ':' | '~';
  readonly value: string;
  readonly negate: boolean;
}

export interface SearchQuery {
  readonly clauses: readonly SearchClause[];
  readonly connective: 'AND' | 'OR';
}

const CLAUSE = /^\s*(-?)(metadata\[(?:'([^']*)'|"([^"]*)")\]|[a-z_]+)\s*([:~])\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*/;

export function parseSearchQuery(query: string, fields: readonly string[]): SearchQuery {
  const clauses: SearchClause[] = [];
  const connectives = new Set<string>();
  let rest = query;
  for (;;) {
    const m = CLAUSE.exec(rest);
    if (!m) throw badQuery(query, `could not parse "${rest.trim() || query}"`);
    const isMetadata = m[2].startsWith('metadata[');
    const field = isMetadata ? 'metadata' : m[2];
    if (!isMetadata && !fields.includes(field)) throw badQuery(query, `field ${field} is not searchable here (supported: ${[...fields, "metadata['key']"].join(', ')})`);
    const value = (m[6] ?? m[7]).replace(/\\(.)/g, '$1');
    if (m[5] === '~' && value.length < 3) throw badQuery(query, 'substring matches (~) need at least 3 characters');
    clauses.push({ field, metadataKey: isMetadata ? (m[3] ?? m[4]) : undefined, op: m[5] as ':' | '~', value, negate: m[1] === '-' });
    rest = rest.slice(m[0].length);
    if (rest === '') break;
    const c = /^(AND|OR)\s+/.exec(rest);
    if (!c) throw badQuery(query, `expected AND or OR before "${rest.trim()}"`);
    connectives.add(c[1]);
    rest = rest.slice(c[0].length);
  }
  if (connectives.size > 1) throw badQuery(query, 'AND and OR cannot be combined in one query');
  if (clauses.length > 10) throw badQuery(query, 'at most 10 clauses');
  return { clauses, connective: connectives.has('OR') ? 'OR' : 'AND' };
}

export function matchesSearch(obj: StripeObject, query: SearchQuery): boolean {
  const test = (c: SearchClause): boolean => {
    const actual = c.metadataKey !== undefined ? obj.metadata?.[c.metadataKey] : obj[c.field];
    if (typeof actual !== 'string') return c.negate;
    const hit = c.op === ':' ? (c.metadataKey !== undefined ? actual === c.value : actual.toLowerCase() === c.value.toLowerCase()) : actual.toLowerCase().includes(c.value.toLowerCase());
    return hit !== c.negate;
  };
  return query.connective === 'AND' ? query.clauses.every(test) : query.clauses.some(test);
}

const badQuery = (query: string, why: string) => apiErrors.invalid(`Invalid search query ${JSON.stringify(query)}: ${why}.`, { param: 'query' });
