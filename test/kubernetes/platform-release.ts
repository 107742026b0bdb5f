import { join } from 'node:path';
import { renderChart, type RenderedChart } from '../chart/render';

/** charts/tenant-platform: what the platform owns in a tenant namespace. */
export const PLATFORM_CHART_DIR = join(__dirname, '..', '..', 'charts', 'tenant-platform');

type Json = Record<string, any>;

/** The tenant-platform helm_release of a synthesized stack. */
export function platformRelease(json: Json): Json {
  const releases = Object.values(json.resource?.helm_release ?? {}) as Json[];
  const found = releases.filter((r) => String(r.chart).endsWith('tenant-platform'));
  if (found.length !== 1) throw new Error(`expected one tenant-platform release, found ${found.length}`);
  return found[0];
}

/** Renders charts/tenant-platform with `values`, as Helm would for the release. */
export function renderPlatform(values: Json, releaseName = `tenant-${values.tenant?.slug}`, releaseNamespace = 'tenancy-system'): RenderedChart {
  return renderChart(values, { chartDir: PLATFORM_CHART_DIR, releaseName, namespace: releaseNamespace });
}

/** Renders the tenant-platform release of a synthesized stack with the values in its JSON. */
export function renderPlatformRelease(json: Json): RenderedChart {
  const release = platformRelease(json);
  const values = (release.values as string[]).map((v) => JSON.parse(v) as Json);
  if (values.length !== 1) throw new Error(`expected one values document, got ${values.length}`);
  return renderPlatform(values[0], release.name, release.namespace);
}

/** Rendered objects of one kind. */
export const ofKind = (rendered: RenderedChart, kind: string): Json[] => rendered.manifests.filter((m) => m.kind === kind);

/** The rendered object of `kind` named `name`. */
export function named(rendered: RenderedChart, kind: string, name: string): Json {
  const found = ofKind(rendered, kind).find((m) => m.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name}; rendered: ${rendered.manifests.map((m) => `${m.kind}/${m.metadata?.name}`).join(', ')}`);
  return found;
}
