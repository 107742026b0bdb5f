import { loadRegistry } from '../../lib/registry/load-registry';
import { FixtureProject } from './fixture-project';

/** The sample registry (platform.yaml and tenants/), loaded from a temporary copy: tests never read the user's files. */
export function loadSampleRegistry(): ReturnType<typeof loadRegistry> {
  const project = FixtureProject.fromSample();
  try {
    return loadRegistry({ root: project.root });
  } finally {
    project.remove();
  }
}
