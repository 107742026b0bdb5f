import type { IConstruct } from 'constructs';
import { siloModelCheck } from '../checks';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

/** PCI-SILO-1: a PCI tenant's data is in its own database (silo): cardholder data never shares storage. */
export const PciSiloRule: PolicyRule = {
  id: 'PCI-SILO-1',
  pack: 'pci',
  explanation: 'cardholder data must never comingle across entities: the silo model is required for a tenant in PCI DSS scope',
  level: 'error',
  requirement: REFERENCE.pci,
  check: (node: IConstruct, ctx: PolicyContext) => siloModelCheck(ctx, node, 'PCI'),
};
