/**
 * The Pod Security Admission `restricted` profile (which includes `baseline`), as Kubernetes
 * 1.25+ ("latest") checks a pod spec. Returns one message per violation; empty means the pod
 * would be admitted into a namespace labelled `pod-security.kubernetes.io/enforce: restricted`.
 * https://kubernetes.io/docs/concepts/security/pod-security-standards/
 */

type Obj = Record<string, any>;

const RESTRICTED_VOLUME_TYPES = new Set(['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret']);
const SAFE_SYSCTLS = new Set([
  'kernel.shm_rmid_forced', 'net.ipv4.ip_local_port_range', 'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies', 'net.ipv4.ping_group_range', 'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time', 'net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_keepalive_intvl', 'net.ipv4.tcp_keepalive_probes',
]);
const SELINUX_TYPES = new Set(['', 'container_t', 'container_init_t', 'container_kvm_t', 'container_engine_t']);

export function restrictedViolations(podSpec: Obj): string[] {
  const v: string[] = [];
  const pod: Obj = podSpec.securityContext ?? {};
  const containers: Obj[] = [
    ...(podSpec.initContainers ?? []),
    ...(podSpec.containers ?? []),
    ...(podSpec.ephemeralContainers ?? []),
  ];
  if (containers.length === 0) v.push('the pod has no containers');

  // baseline
  for (const f of ['hostNetwork', 'hostPID', 'hostIPC'] as const) if (podSpec[f] === true) v.push(`${f} is true`);
  for (const vol of podSpec.volumes ?? []) {
    const type = Object.keys(vol).find((k) => k !== 'name');
    if (type === 'hostPath') v.push(`volume ${vol.name} is a hostPath`);
    else if (!type || !RESTRICTED_VOLUME_TYPES.has(type)) v.push(`volume ${vol.name} has type ${type}, not allowed by restricted`);
  }
  for (const s of pod.sysctls ?? []) if (!SAFE_SYSCTLS.has(s.name)) v.push(`sysctl ${s.name} is not a safe sysctl`);
  const checkSeLinux = (sc: Obj, where: string) => {
    const se = sc.seLinuxOptions;
    if (!se) return;
    if (!SELINUX_TYPES.has(se.type ?? '')) v.push(`${where}: seLinuxOptions.type ${se.type} is not allowed`);
    if (se.user || se.role) v.push(`${where}: seLinuxOptions.user and role must not be set`);
  };
  checkSeLinux(pod, 'pod');
  const seccompBad = (sc: Obj | undefined) => sc?.seccompProfile?.type === 'Unconfined';
  const seccompOk = (sc: Obj | undefined) => ['RuntimeDefault', 'Localhost'].includes(sc?.seccompProfile?.type);
  if (seccompBad(pod)) v.push('pod: seccompProfile.type is Unconfined');
  if (pod.appArmorProfile?.type === 'Unconfined') v.push('pod: appArmorProfile.type is Unconfined');
  if (pod.runAsUser === 0) v.push('pod: runAsUser is 0');

  for (const c of containers) {
    const where = `container ${c.name}`;
    const sc: Obj = c.securityContext ?? {};
    if (sc.privileged === true) v.push(`${where}: privileged is true`);
    for (const p of c.ports ?? []) if (p.hostPort) v.push(`${where}: hostPort ${p.hostPort}`);
    if (sc.procMount && sc.procMount !== 'Default') v.push(`${where}: procMount is ${sc.procMount}`);
    if (sc.appArmorProfile?.type === 'Unconfined') v.push(`${where}: appArmorProfile.type is Unconfined`);
    checkSeLinux(sc, where);
    // restricted
    if (sc.allowPrivilegeEscalation !== false) v.push(`${where}: allowPrivilegeEscalation must be false`);
    const runAsNonRoot = sc.runAsNonRoot ?? pod.runAsNonRoot;
    if (runAsNonRoot !== true) v.push(`${where}: runAsNonRoot must be true (on the pod or the container)`);
    if (sc.runAsUser === 0) v.push(`${where}: runAsUser is 0`);
    if (seccompBad(sc)) v.push(`${where}: seccompProfile.type is Unconfined`);
    else if (!seccompOk(sc) && !seccompOk(pod)) v.push(`${where}: seccompProfile.type must be RuntimeDefault or Localhost (on the pod or the container)`);
    const drop: string[] = sc.capabilities?.drop ?? [];
    if (!drop.includes('ALL')) v.push(`${where}: capabilities.drop must include ALL`);
    for (const cap of sc.capabilities?.add ?? []) if (cap !== 'NET_BIND_SERVICE') v.push(`${where}: capability ${cap} may not be added`);
  }
  return v;
}
