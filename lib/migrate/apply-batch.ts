import { randomBytes } from 'node:crypto';
import type { Connection, Pool, PoolClient, Submittable } from 'pg';
import { connectionLost } from '../db/lost-connections';
import { quoteIdent } from '../db/sql';
import { failedOutcome, GUARD, missingSchema, stepSql, type ApplyOutcome } from './apply-target';
import { versionAfter, type Step } from './plan';
import { guardCallSql, targetLockName, timeoutSql, type AppliedMigration } from './state';
import type { MigrationTarget } from './targets';

/**
 * Applies many targets of one database over one connection, several targets per round trip,
 * each still in its own transaction under its own platform lock with its own state check.
 *
 * The message is one simple query holding, for each target in turn, exactly what
 * {@link applyTarget} sends in its single optimistic round trip: `BEGIN`, the timeouts, the guard
 * (lock, state, schema), the migrations with their records, `COMMIT`. PostgreSQL runs the
 * statements of such a message in order, each `BEGIN … COMMIT` a transaction of its own; the
 * first error skips the rest of the message (nothing of the failing target commits; the targets
 * before it have committed; the targets after it have not started). Markers in the replies
 * (the guard's column, each record's `RETURNING` column, named with a random token) say where the
 * error struck, so it is the failing target's result alone: the batch rolls back and goes on
 * with the next target in a new message. One round trip per batch instead of per target: the
 * server works through the batch without waiting on the client, and the client parses fewer,
 * larger replies.
 *
 * Only targets whose pending migrations are transactional and run in one transaction, without a
 * hook before COMMIT, come here (lib/migrate/runner.ts); the others go through {@link applyTarget}.
 * A target whose state changed since it was read is returned as `run-alone` (the runner
 * migrates it alone, re-reading its state under its lock).
 */
export interface BatchItem {
  readonly target: MigrationTarget;
  /** The state read for the database, which the steps were planned from. */
  readonly expected: readonly AppliedMigration[];
  /** Every pending step: transactional, one transaction. */
  readonly steps: readonly Step[];
  /** The schema may be created (pool, control plane, `createSchema`). */
  readonly createSchema: boolean;
}

export interface BatchOptions {
  readonly lockTimeoutMs: number;
  readonly statementTimeoutMs: number;
  /** Creates the state table and guard when missing (memoized per database by the caller). */
  readonly ensureStateTable: () => Promise<void>;
  /** Targets per message. @default 25 */
  readonly batchSize?: number;
}

/**
 * `run-alone`: the target is to be migrated by {@link applyTarget}, under its lock from a fresh
 * read of its state: its state changed since it was read, or the message could not be parsed
 * (a syntax error is reported by the target's own run, naming its file).
 */
export type BatchOutcome = ApplyOutcome | { readonly status: 'run-alone' };

export interface BatchResult {
  readonly item: BatchItem;
  readonly outcome: BatchOutcome;
  /** From the target's guard to its COMMIT as the replies arrived (its share of the round trip). */
  readonly ms: number;
}

export async function applyBatch(pool: Pool, items: readonly BatchItem[], options: BatchOptions): Promise<BatchResult[]> {
  const results: BatchResult[] = [];
  const versionOf = (item: BatchItem) => Math.max(0, ...item.expected.map((a) => a.version));
  const fail = (item: BatchItem, cause: unknown) => results.push({ item, outcome: failedOutcome(cause, undefined, undefined, [], versionOf(item)), ms: 0 });
  try {
    await options.ensureStateTable();
  } catch (e) {
    for (const item of items) fail(item, e);
    return results;
  }
  const size = Math.max(1, options.batchSize ?? 25);
  let rest = [...items];
  while (rest.length) {
    let client: PoolClient;
    try {
      client = await pool.connect();
    } catch (e) {
      for (const item of rest) fail(item, e);
      break;
    }
    let discard = false;
    try {
      // One message at a time on this connection, until a lost connection sends the rest to a fresh one.
      while (rest.length && !discard) {
        const batch = rest.slice(0, size);
        const token = randomBytes(6).toString('hex');
        const replies = new MarkedReplies(batch.map((item, index) => targetSql(item, index, token, options)).join('\n'), `tenancy_${token}_`);
        await client.query(replies).finished;
        const read = readReplies(replies, batch);
        // The targets before the error (all of them without one) ran to their COMMIT, in the expected shape.
        const ran = replies.error ? read.failedIndex : batch.length;
        for (let index = 0; index < ran; index++) {
          const item = batch[index];
          const ms = read.committed.get(index);
          const outcome: ApplyOutcome = ms === undefined || read.broken.has(index)
            ? { status: 'failed', steps: [], version: versionOf(item), error: 'the migration did not run to its end (an unterminated comment or a transaction statement in the file?)', file: item.steps[0].script.file }
            : { status: 'applied', steps: item.steps, version: versionAfter(item.expected.map((a) => a.version), item.steps) };
          results.push({ item, outcome, ms: ms ?? 0 });
        }
        if (!replies.error) {
          rest = rest.slice(batch.length);
          continue;
        }
        const failed = read.failedIndex;
        const item = batch[failed];
        if (!item) throw new Error(`unreachable: an error after the batch's last COMMIT: ${(replies.error as Error)?.message}`);
        if (replies.events.length === 0 && !connectionLost(client)) {
          // Nothing ran: the message did not parse. Each target runs alone and reports its own error.
          for (const alone of rest) results.push({ item: alone, outcome: { status: 'run-alone' }, ms: 0 });
          rest = [];
          break;
        }
        try {
          await client.query('ROLLBACK');
        } catch {
          discard = true;
        }
        // Checked after the ROLLBACK attempt: the socket's end (and its 'error') may follow the query's error.
        const lost = connectionLost(client);
        if (lost) discard = true;
        const code = (replies.error as { code?: string }).code;
        if (!lost && code === GUARD.locked) results.push({ item, outcome: { status: 'skipped-locked', steps: [], version: versionOf(item) }, ms: read.failedMs });
        else if (!lost && code === GUARD.stateChanged) results.push({ item, outcome: { status: 'run-alone' }, ms: read.failedMs });
        else if (!lost && code === GUARD.noSchema) results.push({ item, outcome: { status: 'failed', steps: [], version: versionOf(item), ...missingSchema(quoteIdent(item.target.schema)) }, ms: read.failedMs });
        else results.push({ item, outcome: failedOutcome(replies.error, read.failedFile, lost, [], versionOf(item)), ms: read.failedMs });
        rest = rest.slice(failed + 1);
      }
    } finally {
      client.release(discard ? true : undefined);
    }
  }
  return results;
}

/** One target's transaction, as applyTarget's optimistic round trip, with markers in two replies. */
function targetSql(item: BatchItem, index: number, token: string, options: BatchOptions): string {
  const { target, steps } = item;
  const guard = `${guardCallSql(target.name, targetLockName(target.name), item.expected, target.schema, item.createSchema)} AS "tenancy_${token}_${index}_g"`;
  const prelude = `BEGIN; ${timeoutSql({ ...options, local: true })};\n${guard};\n`;
  return steps.map((step, s) => stepSql(target, step, s === 0 ? prelude : '', s === steps.length - 1, `tenancy_${token}_${index}_${s}`)).join('\n');
}

/** What the replies say: which targets committed (and when), which broke the expected shape, where the error struck. */
function readReplies(replies: MarkedReplies, batch: readonly BatchItem[]): {
  committed: Map<number, number>;
  broken: Set<number>;
  failedIndex: number;
  failedFile: string | undefined;
  failedMs: number;
} {
  const committed = new Map<number, number>();
  const broken = new Set<number>();
  let current = -1; // the target whose guard ran last
  let open = false; // its transaction not yet committed
  let started = 0;
  let recorded = 0; // its steps recorded so far
  let recording: Step | undefined; // a record marker seen, its command not yet complete
  let awaitingCommit = false;
  for (const event of replies.events) {
    if (event.marker !== undefined) {
      const [index, part] = event.marker;
      if (part === 'g') {
        if (open) broken.add(current); // a guard before the previous target's COMMIT
        current = index;
        open = true;
        started = event.at;
        recorded = 0;
        awaitingCommit = false;
      } else if (index === current) {
        recording = batch[index].steps[Number(part)];
      }
      continue;
    }
    if (!open) continue;
    if (recording) {
      const ok = event.command === (recording.direction === 'up' ? 'INSERT' : 'DELETE') && event.rowCount === 1;
      if (!ok) broken.add(current);
      recording = undefined;
      recorded++;
      awaitingCommit = recorded === batch[current].steps.length;
    } else if (awaitingCommit) {
      if (event.command !== 'COMMIT') broken.add(current);
      committed.set(current, event.at - started);
      open = false;
      awaitingCommit = false;
    }
  }
  // The error belongs to the target whose transaction was open, else to the next one (its BEGIN or guard).
  const failedIndex = open ? current : current + 1;
  const steps = batch[failedIndex]?.steps ?? [];
  const failedFile = open ? steps[Math.min(recorded, steps.length - 1)]?.script.file : undefined;
  return { committed, broken, failedIndex, failedFile, failedMs: open ? Date.now() - started : 0 };
}

interface ReplyEvent {
  /** [target index, 'g' (guard) or the step's index] of a marker column. */
  readonly marker?: readonly [number, string];
  readonly command?: string;
  readonly rowCount?: number;
  readonly at: number;
}

/**
 * A simple query whose replies are kept as a list of events (marker columns and completed
 * commands), not parsed into rows: node-postgres's own Query keeps nothing when an error
 * follows, and these replies are only read for where the markers fell.
 */
class MarkedReplies implements Submittable {
  readonly events: ReplyEvent[] = [];
  error: unknown;
  readonly finished: Promise<void>;
  private resolve!: () => void;
  private settled = false;

  constructor(private readonly text: string, private readonly prefix: string) {
    this.finished = new Promise((resolve) => (this.resolve = resolve));
  }

  submit(connection: Connection): void {
    connection.query(this.text);
  }

  handleRowDescription(msg: { fields: { name: string }[] }): void {
    const name = msg.fields.length === 1 ? msg.fields[0].name : '';
    if (!name.startsWith(this.prefix)) return;
    const [index, part] = name.slice(this.prefix.length).split('_');
    this.events.push({ marker: [Number(index), part], at: Date.now() });
  }

  handleDataRow(): void {}

  handleCommandComplete(msg: { text: string }): void {
    const words = msg.text.split(' ');
    const last = Number(words[words.length - 1]);
    this.events.push({ command: words[0], rowCount: Number.isNaN(last) ? undefined : last, at: Date.now() });
  }

  handleEmptyQuery(): void {}

  handlePortalSuspended(): void {}

  handleCopyInResponse(connection: Connection & { sendCopyFail?: (message: string) => void }): void {
    connection.sendCopyFail?.('COPY FROM STDIN is not supported in a migration');
  }

  handleCopyData(): void {}

  handleError(error: unknown): void {
    this.error = error;
    this.settle();
  }

  handleReadyForQuery(): void {
    this.settle();
  }

  private settle(): void {
    if (this.settled) return;
    this.settled = true;
    this.resolve();
  }
}
