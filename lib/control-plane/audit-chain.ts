import type { ClientBase } from 'pg';

/**
 * Verification of the audit log's hash chain (migrations/control-plane/0004): entry n carries
 * seq = n, prev_hash = the hash of entry n - 1 (64 zeros for the first) and
 * hash = sha256(prev_hash || [seq, id, at (UTC), actor, action, tenant_id, details] as jsonb text).
 * The database computes it on INSERT; this recomputes it from the rows, with the expression below
 * (not with the database's function, which whoever can edit the log could also redefine).
 *
 * What it detects: an entry edited, deleted, inserted or moved without recomputing every hash
 * after it and the head (tenancy.audit_log_head). Whoever can rewrite the whole chain (a
 * superuser) can make it consistent again; a head recorded earlier (`anchor`) detects that too.
 */

export const GENESIS_HASH = '0'.repeat(64);

/** The digest of an entry, as SQL over the columns of tenancy.audit_log (alias `a`) and a previous hash `$prev`. */
const DIGEST_SQL = (prev: string) =>
  `encode(sha256(convert_to(${prev} || jsonb_build_array(a.seq, a.id, to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), a.actor, a.action, a.tenant_id, a.details)::text, 'UTF8')), 'hex')`;

/** The first link that does not hold. */
export interface ChainBreak {
  /** The entry where the chain breaks (for `head`: the last entry; for `anchor`: the anchored entry, if it still exists). */
  readonly id: string | null;
  readonly seq: number;
  /**
   * seq: an entry is missing or extra (found seq instead of expected); prev_hash: the entry does
   * not follow the one before it; hash: the entry's content is not what was hashed; head: the
   * newest entries were removed or added past the chain head; anchor: the entry's hash differs
   * from the anchor recorded earlier.
   */
  readonly field: 'seq' | 'prev_hash' | 'hash' | 'head' | 'anchor';
  readonly expected: string;
  readonly found: string;
}

export interface ChainVerification {
  readonly ok: boolean;
  /** Entries checked (up to the break). */
  readonly entries: number;
  /** The newest entry as verified: record it (e.g. with the compliance report) to anchor a later verification. */
  readonly head: { readonly seq: number; readonly hash: string } | null;
  readonly break?: ChainBreak;
}

/** A head recorded earlier: `<seq>:<hash>`. */
export interface ChainAnchor {
  readonly seq: number;
  readonly hash: string;
}

export function parseAnchor(text: string): ChainAnchor {
  const m = /^([1-9][0-9]{0,17}):([0-9a-f]{64})$/.exec(text.trim());
  if (!m) throw new Error(`anchor ${JSON.stringify(text)} is not <seq>:<64 hex digits of the hash>`);
  return { seq: Number(m[1]), hash: m[2] };
}

const BATCH = 5000;

interface Row {
  id: string;
  seq: string;
  prev_hash: string;
  hash: string;
  digest: string;
}

/** Recomputes the chain on `client` (any role with SELECT on tenancy.audit_log and tenancy.audit_log_head). */
export async function verifyAuditChain(client: Pick<ClientBase, 'query'>, options: { anchor?: ChainAnchor } = {}): Promise<ChainVerification> {
  let expectedSeq = 1;
  let prevHash = GENESIS_HASH;
  let last: { id: string; seq: number; hash: string } | undefined;
  let anchorSeen = false;
  const broken = (b: ChainBreak): ChainVerification => ({ ok: false, entries: expectedSeq - 1, head: last ? { seq: last.seq, hash: last.hash } : null, break: b });
  for (let after = 0; ; ) {
    // Keyset pages in chain order; the digest is computed from the row's own prev_hash.
    const rows = (await client.query<Row>(
      `SELECT a.id::text, a.seq::text, a.prev_hash, a.hash, ${DIGEST_SQL('a.prev_hash')} AS digest
         FROM tenancy.audit_log a WHERE a.seq > $1 ORDER BY a.seq LIMIT ${BATCH}`,
      [after],
    )).rows;
    for (const r of rows) {
      const seq = Number(r.seq);
      if (seq !== expectedSeq) return broken({ id: r.id, seq, field: 'seq', expected: String(expectedSeq), found: String(seq) });
      if (r.prev_hash !== prevHash) return broken({ id: r.id, seq, field: 'prev_hash', expected: prevHash, found: r.prev_hash });
      if (r.digest !== r.hash) return broken({ id: r.id, seq, field: 'hash', expected: r.digest, found: r.hash });
      if (options.anchor && options.anchor.seq === seq) {
        anchorSeen = true;
        if (options.anchor.hash !== r.hash) return broken({ id: r.id, seq, field: 'anchor', expected: options.anchor.hash, found: r.hash });
      }
      last = { id: r.id, seq, hash: r.hash };
      prevHash = r.hash;
      expectedSeq++;
    }
    if (rows.length < BATCH) break;
    after = Number(rows[rows.length - 1].seq);
  }
  const head = (await client.query<{ seq: string; hash: string }>('SELECT seq::text, hash FROM tenancy.audit_log_head')).rows;
  const lastSeq = last?.seq ?? 0;
  const lastHash = last?.hash ?? GENESIS_HASH;
  if (head.length !== 1) return broken({ id: last?.id ?? null, seq: lastSeq, field: 'head', expected: '1 head row', found: `${head.length} head rows` });
  if (Number(head[0].seq) !== lastSeq || head[0].hash !== lastHash) {
    return broken({ id: last?.id ?? null, seq: lastSeq, field: 'head', expected: `${head[0].seq}:${head[0].hash}`, found: `${lastSeq}:${lastHash}` });
  }
  if (options.anchor && !anchorSeen) {
    return broken({ id: null, seq: options.anchor.seq, field: 'anchor', expected: options.anchor.hash, found: 'no such entry' });
  }
  return { ok: true, entries: lastSeq, head: last ? { seq: last.seq, hash: last.hash } : null };
}

/** One line for a verification: what a person reads in the CLI and the compliance report. */
export function describeVerification(v: ChainVerification): string {
  if (v.ok) return `audit log chain intact: ${v.entries} entries checked${v.head ? `, head ${v.head.seq}:${v.head.hash}` : ''}`;
  const b = v.break!;
  const where = b.id === null ? `seq ${b.seq}` : `entry id ${b.id} (seq ${b.seq})`;
  const what = {
    seq: 'an entry is missing or out of place',
    prev_hash: 'it does not follow the entry before it',
    hash: 'its content is not what was hashed',
    head: 'the newest entries do not end at the chain head',
    anchor: 'its hash differs from the anchor recorded earlier',
  }[b.field];
  return `audit log chain BROKEN at ${where}: ${what} (${b.field}: expected ${b.expected}, found ${b.found}); ${v.entries} entries verified before it`;
}
