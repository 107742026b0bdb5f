import { evaluateExpression, type OfflinePlan, type PlannedResource } from '../support/terraform';

/**
 * Compact, stable views of an offline plan for assertions and snapshots: a handful of
 * attributes per resource type instead of the whole plan, unknown values shown as what
 * they refer to ("→ aws_kms_key.x.arn"), nested blocks as one line per rule.
 */

export const KNOWN_AFTER_APPLY = '(known after apply)';

/** The attributes each snapshot keeps, per resource type. Anything else is left out. */
const KEY_ATTRIBUTES: Record<string, readonly string[]> = {
  aws_db_instance: [
    'identifier', 'engine', 'engine_version', 'instance_class', 'allocated_storage', 'max_allocated_storage', 'storage_type',
    'storage_encrypted', 'kms_key_id', 'db_name', 'username', 'password', 'manage_master_user_password', 'master_user_secret_kms_key_id',
    'iam_database_authentication_enabled', 'publicly_accessible', 'db_subnet_group_name', 'vpc_security_group_ids', 'parameter_group_name',
    'multi_az', 'backup_retention_period', 'deletion_protection', 'skip_final_snapshot', 'final_snapshot_identifier',
    'performance_insights_enabled', 'performance_insights_kms_key_id', 'performance_insights_retention_period',
    'enabled_cloudwatch_logs_exports', 'ca_cert_identifier',
  ],
  aws_db_parameter_group: ['name', 'family', 'parameter'],
  aws_db_subnet_group: ['name', 'subnet_ids'],
  aws_security_group: ['name', 'vpc_id', 'ingress', 'egress', 'revoke_rules_on_delete'],
  aws_kms_key: ['description', 'enable_key_rotation', 'deletion_window_in_days', 'key_usage'],
  aws_kms_alias: ['name', 'target_key_id'],
  aws_cloudwatch_log_group: ['name', 'retention_in_days'],
  aws_secretsmanager_secret: ['name', 'kms_key_id', 'recovery_window_in_days'],
  aws_secretsmanager_secret_version: ['secret_id', 'secret_string'],
  aws_rds_cluster: [
    'cluster_identifier', 'engine', 'engine_version', 'database_name', 'master_username', 'master_password', 'manage_master_user_password',
    'master_user_secret_kms_key_id', 'storage_encrypted', 'kms_key_id', 'db_subnet_group_name', 'vpc_security_group_ids',
    'db_cluster_parameter_group_name', 'iam_database_authentication_enabled', 'backup_retention_period', 'deletion_protection',
    'skip_final_snapshot', 'final_snapshot_identifier', 'enabled_cloudwatch_logs_exports',
  ],
  aws_rds_cluster_instance: [
    'identifier', 'cluster_identifier', 'engine', 'engine_version', 'instance_class', 'publicly_accessible',
    'performance_insights_enabled', 'performance_insights_kms_key_id', 'ca_cert_identifier',
  ],
  aws_rds_cluster_parameter_group: ['name', 'family', 'parameter'],
  aws_iam_role: ['name', 'description', 'path', 'assume_role_policy', 'permissions_boundary', 'max_session_duration'],
  aws_iam_role_policy: ['name', 'role', 'policy'],
  aws_route53_zone: ['name', 'comment', 'vpc', 'force_destroy', 'delegation_set_id'],
  aws_route53_record: ['zone_id', 'name', 'type', 'ttl', 'records'],
};

/** Attributes that hold a JSON document (IAM policies): shown parsed, see {@link jsonDocument}. */
const JSON_DOCUMENTS = new Set(['assume_role_policy', 'policy']);

/** The most specific references of a configuration expression ("aws_kms_key.x.arn", not also "aws_kms_key.x"). */
export function referencesOf(expression: any): string[] {
  const refs: string[] = expression?.references ?? [];
  return refs.filter((ref) => !refs.some((other) => other !== ref && (other.startsWith(`${ref}.`) || other.startsWith(`${ref}[`))));
}

/** The value an attribute will have: its planned value, or "→ <reference>" / KNOWN_AFTER_APPLY when unknown at plan time. */
export function attribute(resource: PlannedResource, name: string): unknown {
  if (resource.unknown[name] === true) {
    const refs = referencesOf(resource.expressions[name]);
    return refs.length > 0 ? `→ ${refs.join(', ')}` : KNOWN_AFTER_APPLY;
  }
  return resource.values[name];
}

/**
 * A JSON-document attribute (an IAM policy) as an object. Known at plan time: the planned value,
 * parsed. Unknown (it refers to values known only after apply, such as a secret's ARN): terraform
 * evaluates the configured expression with each reference replaced by the string "→ <reference>",
 * so the document can be checked whole, down to which resource each statement names.
 */
export function jsonDocument(resource: PlannedResource, name: string): any {
  if (resource.unknown[name] !== true) {
    const value = resource.values[name];
    if (typeof value !== 'string') throw new Error(`${resource.address}.${name} is not a JSON document: ${JSON.stringify(value)}`);
    return JSON.parse(value);
  }
  const expression = resource.expressions[name];
  const text = expression?.constant_value;
  // A JSON string template with plain references interpolated ("Resource": "${aws_x.y.arn}").
  if (typeof text === 'string' && text.startsWith('{')) {
    const references = new Set(referencesOf(expression));
    const document = text.replace(/\$\{([^}]*)\}/g, (whole, ref: string) => {
      if (!references.has(ref)) throw new Error(`${resource.address}.${name}: ${whole} is not a plain reference`);
      return `→ ${ref}`;
    });
    return JSON.parse(document);
  }
  const inner = typeof text === 'string' ? /^\$\{([\s\S]*)\}$/.exec(text)?.[1] : undefined;
  if (inner === undefined) throw new Error(`${resource.address}.${name}: no single-interpolation expression to evaluate (${JSON.stringify(expression)})`);
  // One pass, longest reference first, so no placeholder is replaced again.
  const refs = [...new Set(referencesOf(expression))].sort((a, b) => b.length - a.length);
  const pattern = new RegExp(refs.map((r) => r.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
  const evaluable = refs.length > 0 ? inner.replace(pattern, (ref) => JSON.stringify(`→ ${ref}`)) : inner;
  const value = evaluateExpression(evaluable);
  if (typeof value !== 'string') throw new Error(`${resource.address}.${name} evaluates to ${JSON.stringify(value)}, not a JSON document`);
  return JSON.parse(value);
}

type SecurityGroupRule = {
  protocol: string; from_port: number; to_port: number; description: string; self: boolean;
  cidr_blocks: string[]; ipv6_cidr_blocks: string[]; prefix_list_ids: string[]; security_groups: string[];
};

/** "tcp 5432-5432 from sg-1, 10.0.0.0/8 (description)". */
export function describeRule(rule: SecurityGroupRule): string {
  const sources = [...(rule.security_groups ?? []), ...(rule.cidr_blocks ?? []), ...(rule.ipv6_cidr_blocks ?? []), ...(rule.prefix_list_ids ?? []), ...(rule.self ? ['self'] : [])];
  return `${rule.protocol} ${rule.from_port}-${rule.to_port} from ${sources.join(', ') || 'nothing'}${rule.description ? ` (${rule.description})` : ''}`;
}

const BLOCKS: Record<string, (value: any) => unknown> = {
  parameter: (list: { name: string; value: string; apply_method: string }[]) => list.map((p) => `${p.name}=${p.value} (${p.apply_method})`).sort(),
  ingress: (list: SecurityGroupRule[]) => list.map(describeRule).sort(),
  egress: (list: SecurityGroupRule[]) => list.map(describeRule).sort(),
};

function projectResource(resource: PlannedResource, commonTags: Record<string, string> | undefined): Record<string, unknown> {
  const keys = KEY_ATTRIBUTES[resource.type];
  if (!keys) throw new Error(`plan-projection: no key attributes listed for ${resource.type} (${resource.address}); add them to KEY_ATTRIBUTES`);
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const value = JSON_DOCUMENTS.has(key) && (resource.unknown[key] === true || typeof resource.values[key] === 'string') ? jsonDocument(resource, key) : attribute(resource, key);
    if (value === undefined) continue;
    out[key] = BLOCKS[key] && Array.isArray(value) ? BLOCKS[key](value) : value;
  }
  if (resource.dependsOn.length > 0) out.depends_on = [...resource.dependsOn].sort();
  const tags = resource.values.tags_all;
  if (tags && commonTags && JSON.stringify(sortKeys(tags)) !== JSON.stringify(commonTags)) out.tags_all = sortKeys(tags);
  return out;
}

function sortKeys<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Resources that have tags_all in the plan (taggable types). */
export const taggable = (plan: OfflinePlan) => plan.resources.filter((r) => 'tags_all' in r.values);

/**
 * The snapshot of one planned stack: the provider region, the tags every taggable resource
 * shares, the resources that cannot be tagged, each resource's key attributes (by address)
 * and the outputs.
 */
export function projectPlan(plan: OfflinePlan): Record<string, unknown> {
  const tagged = taggable(plan);
  // The tags most resources share; a resource with other tags lists its own.
  const commonTags = tagged.length > 0 ? (JSON.parse(mostFrequent(tagged.map((r) => JSON.stringify(sortKeys(r.values.tags_all ?? {}))))) as Record<string, string>) : undefined;
  return {
    region: plan.raw.configuration?.provider_config?.aws?.expressions?.region?.constant_value,
    tags_all_of_taggable_resources: commonTags ?? null,
    not_taggable: plan.resources.filter((r) => !('tags_all' in r.values)).map((r) => r.address),
    resources: Object.fromEntries(plan.resources.map((r) => [r.address, projectResource(r, commonTags)])),
    outputs: Object.fromEntries(
      Object.entries(plan.outputs)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([name, o]) => [name, 'value' in o ? o.value : outputReference(plan, name)]),
    ),
  };
}

function outputReference(plan: OfflinePlan, name: string): string {
  const refs = referencesOf(plan.raw.configuration?.root_module?.outputs?.[name]?.expression);
  return refs.length > 0 ? `→ ${refs.join(', ')}` : KNOWN_AFTER_APPLY;
}

function mostFrequent(values: string[]): string {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts.entries()].sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1))[0][0];
}

/** Resources of one type. */
export const ofType = (plan: OfflinePlan, type: string) => plan.resources.filter((r) => r.type === type);

/** The single resource of `type`; fails when there is not exactly one. */
export function only(plan: OfflinePlan, type: string): PlannedResource {
  const found = ofType(plan, type);
  if (found.length !== 1) throw new Error(`expected exactly one ${type}, found ${found.length}: ${found.map((r) => r.address).join(', ')}`);
  return found[0];
}

/** The address an attribute refers to, e.g. refersTo(db, 'kms_key_id') === 'aws_kms_key.x.arn'. */
export function refersTo(resource: PlannedResource, name: string): string[] {
  return referencesOf(resource.expressions[name]);
}
