import { TENANT_PLATFORM_CHART, helmTemplate, named, ofKind, releaseOf, renderRelease, type RenderedChart } from '../support/helm';

/** charts/tenant-platform: what the platform owns in a tenant namespace. */
export const PLATFORM_CHART_DIR = TENANT_PLATFORM_CHART;

type Json = Record<string, any>;

export { named, ofKind, type RenderedChart };

/** The tenant-platform helm_release of a synthesized stack. */
export const platformRelease = (json: Json): Json => releaseOf(json, 'tenant-platform');

/** `helm template` of charts/tenant-platform with `values`, as for the release. */
export function renderPlatform(values: Json, releaseName = `tenant-${values.tenant?.slug}`, releaseNamespace = 'tenancy-system'): RenderedChart {
  return helmTemplate(PLATFORM_CHART_DIR, [values], { releaseName, namespace: releaseNamespace });
}

/** `helm template` of the tenant-platform release of a synthesized stack, with the values in its JSON. */
export const renderPlatformRelease = (json: Json): RenderedChart => renderRelease(json, 'tenant-platform');
