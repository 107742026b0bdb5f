import type { IConstruct } from 'constructs';
import { dedicatedPlacementProblems } from '../checks';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

/**
 * PCI-K8S-1: every pod of a PCI tenant (its workload and the platform's PgBouncer) runs only on
 * dedicated nodes: required node affinity to them and a toleration of their NoSchedule taint.
 */
export const PciDedicatedNodesRule: PolicyRule = {
  id: 'PCI-K8S-1',
  pack: 'pci',
  explanation: "PCI-scope workloads run on dedicated nodes (node affinity), so no other tenant's pod shares their kernel",
  level: 'error',
  requirement: REFERENCE.pci,
  check(node: IConstruct, ctx: PolicyContext) {
    const chart = ctx.releaseChart(node);
    if (chart !== 'tenant-platform' && chart !== 'tenant-app') return undefined;
    const values = ctx.releaseValues(node)!;
    const problems = chart === 'tenant-platform'
      ? dedicatedPlacementProblems(values.placement?.affinity, values.placement?.tolerations, 'platform release (PgBouncer)')
      : dedicatedPlacementProblems(values.affinity, values.tolerations, 'workload release');
    return problems.length ? problems : true;
  },
};
