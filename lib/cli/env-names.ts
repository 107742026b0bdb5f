/**
 * Environment variables renamed to the one scheme (TENANCY_<AREA>_<NAME>, e.g. the Stripe Checkout
 * URLs under TENANCY_BILLING_* with TENANCY_BILLING_TRIAL_DAYS): old name → current name. The old
 * names are still read, with a one-line warning, until they are removed.
 */
export const DEPRECATED_ENV_NAMES: Readonly<Record<string, string>> = {
  TENANCY_CHECKOUT_SUCCESS_URL: 'TENANCY_BILLING_SUCCESS_URL',
  TENANCY_CHECKOUT_CANCEL_URL: 'TENANCY_BILLING_CANCEL_URL',
};

/**
 * Moves each deprecated variable set in `env` to its current name (which wins when both are set)
 * and removes the old name, so it is read and warned about once; one warning line per old name.
 * Mutates and returns `env`.
 */
export function adoptCurrentEnvNames(env: NodeJS.ProcessEnv, stderr: NodeJS.WritableStream): NodeJS.ProcessEnv {
  for (const [old, current] of Object.entries(DEPRECATED_ENV_NAMES)) {
    const value = env[old];
    if (value === undefined) continue;
    const ignored = env[current] !== undefined;
    stderr.write(`tenancy: warning: ${old} is deprecated, use ${current}${ignored ? ` (both are set: ${old} is ignored)` : ''}\n`);
    if (!ignored) env[current] = value;
    delete env[old];
  }
  return env;
}
