import type { IConstruct } from 'constructs';
import { regulatedEgressCheck } from '../checks';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

/** PCI-K8S-2: a PCI tenant's namespace reaches only its database (private networks, PostgreSQL port) and the cluster DNS. */
export const PciEgressRule: PolicyRule = {
  id: 'PCI-K8S-2',
  pack: 'pci',
  explanation: 'network segmentation at the NetworkPolicy layer: the cardholder data environment talks only to its database',
  level: 'error',
  requirement: REFERENCE.pci,
  check: (node: IConstruct, ctx: PolicyContext) => regulatedEgressCheck(ctx, node),
};
