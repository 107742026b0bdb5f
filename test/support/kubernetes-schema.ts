/**
 * Validates rendered Kubernetes objects against the OpenAPI schemas of Kubernetes (npm
 * kubernetes-models) and of the External Secrets Operator (@kubernetes-models/external-secrets),
 * offline: required fields, types, enums and formats of every field the schemas describe. (Like
 * the schemas, it does not refuse fields they do not describe; the API server prunes or warns
 * about those.)
 */

type Json = Record<string, any>;

interface ModelClass {
  new (data: Json): { validate(): void };
}

/** Model modules by apiVersion (`apps/v1`, `v1`, …): each exports one class per kind. */
function modelsOf(apiVersion: string): Record<string, ModelClass> | undefined {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  try {
    if (group === 'external-secrets.io') return require(`@kubernetes-models/external-secrets/external-secrets.io/${version}`);
    if (group.includes('.') && !group.endsWith('.k8s.io')) return undefined;
    return require(group === '' ? `kubernetes-models/${version}` : `kubernetes-models/${group}/${version}`);
  } catch {
    return undefined;
  }
}

/** What is wrong with `object` by its schema; empty when nothing is. An apiVersion/kind without a schema is a problem too. */
export function schemaProblems(object: Json): string[] {
  const what = `${object.kind}/${object.metadata?.name ?? '?'}`;
  const Model = typeof object.apiVersion === 'string' && typeof object.kind === 'string' ? modelsOf(object.apiVersion)?.[object.kind] : undefined;
  if (typeof Model !== 'function') return [`${what}: no schema for ${object.apiVersion} ${object.kind}`];
  try {
    new Model(object).validate();
    return [];
  } catch (e) {
    return [`${what}: ${(e as Error).message}`];
  }
}
