import { Queue, type ConnectionOptions } from 'bullmq';

/**
 * The rollout queue: one BullMQ job per stack of a rollout wave, taken by any `tenancy worker`
 * on any machine (lib/fleet/rollout-worker.ts). The job carries ids only: the worker reads the
 * stack's row (tenancy.rollout_stacks, migration 0012) for the artifact's key and hashes, fetches
 * the artifact (lib/fleet/rollout-artifacts.ts) and applies it, so a worker needs no registry and
 * a job never holds stale or secret data.
 *
 * The job id includes the stack's round (how many times it was queued): adding a live job twice
 * is ignored by BullMQ, while a stack that a resume puts back gets a new job.
 *
 * Retries: an attempt that fails is retried with backoff (a transient fault: a lost connection,
 * the state lock held by an apply that is still running); a job whose worker died is put back by
 * BullMQ's stalled-job check after its lock duration. Terraform's S3 state lock (use_lockfile)
 * keeps the retry from applying while the dead worker's terraform still runs.
 */
export interface RolloutJobData {
  readonly rolloutId: string;
  readonly stack: string;
}

export const ROLLOUT_QUEUE = {
  name: 'tenancy-rollout',
  /** Attempts of one job before its stack is marked failed (the rollout's threshold decides then). */
  attempts: 3,
  backoffMs: 5_000,
} as const;

export const rolloutJobId = (rolloutId: string, stack: string, round: number) => `rollout.${rolloutId}.${stack}.${round}`;

/** The queue a rollout coordinator adds jobs to (workers consume it with a BullMQ Worker of the same name). */
export function rolloutQueue(connection: ConnectionOptions, onError?: (error: Error) => void, name: string = ROLLOUT_QUEUE.name): Queue<RolloutJobData> {
  const queue = new Queue<RolloutJobData>(name, {
    connection,
    defaultJobOptions: {
      attempts: ROLLOUT_QUEUE.attempts,
      backoff: { type: 'exponential', delay: ROLLOUT_QUEUE.backoffMs },
      removeOnComplete: { count: 10_000 },
      removeOnFail: { count: 10_000 },
    },
  });
  queue.on('error', (error) => onError?.(error));
  return queue;
}
