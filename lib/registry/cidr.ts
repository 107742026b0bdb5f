import { BlockList, isIPv4 } from 'node:net';

/** A CIDR block, as written (`10.1.2.0/24`), split into its address and prefix length. */
export interface Cidr {
  readonly text: string;
  readonly address: string;
  readonly prefix: number;
}

/** Parses an IPv4 CIDR ("a.b.c.d/n"); undefined when it is not one. */
export function parseIpv4Cidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const address = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  if (!isIPv4(address) || !/^(?:[0-9]|[12][0-9]|3[0-2])$/.test(prefixText)) return undefined;
  return { text, address, prefix: Number(prefixText) };
}

function contains(block: Cidr, address: string): boolean {
  // Node's BlockList masks the host bits, so "10.1.2.3/8" covers all of 10.0.0.0/8.
  const list = new BlockList();
  list.addSubnet(block.address, block.prefix, 'ipv4');
  return list.check(address, 'ipv4');
}

/**
 * Whether two blocks share any address. Prefix blocks are either nested or disjoint, so they
 * overlap exactly when one of them holds the other's address.
 */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return contains(a, b.address) || contains(b, a.address);
}

/** Whether `inner` lies entirely inside `outer`. */
export function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  return inner.prefix >= outer.prefix && contains(outer, inner.address);
}
