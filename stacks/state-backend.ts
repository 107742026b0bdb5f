import { LocalBackend, S3Backend, type TerraformStack } from 'cdktf';
import type { StateConfig } from '../lib/registry/platform-schema';

/**
 * Points `stack` at its state: a local file by default, or one S3 object per stack with
 * S3-native locking (a .tflock object, Terraform >= 1.10). `key` is derived from immutable
 * ids, so renaming a tenant never orphans its state.
 */
export function useStateBackend(stack: TerraformStack, state: StateConfig, key: string): void {
  if (state.backend === 'local') {
    // Relative to the stack's working directory, cdktf.out/stacks/<stack>.
    new LocalBackend(stack, { path: `../../../${state.directory}/${key}` });
    return;
  }
  const backend = new S3Backend(stack, {
    bucket: state.bucket,
    region: state.region,
    key: state.keyPrefix ? `${state.keyPrefix}/${key}` : key,
    encrypt: true,
    kmsKeyId: state.kmsKeyId,
  });
  // cdktf 0.21's S3Backend predates use_lockfile; the override writes it into the backend block.
  backend.addOverride('use_lockfile', true);
}
