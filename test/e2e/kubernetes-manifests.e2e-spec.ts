/**
 * docker/kubernetes/: every manifest validated against the Kubernetes API schemas (kubernetes-models), and
 * the wiring checked: selectors match the pod labels, every referenced ConfigMap/Secret/claim (and key)
 * exists, probe paths answer on a real app, the ConfigMap's config loads, the grace period outlasts the
 * drain, and the pod meets the "restricted" Pod Security Standard.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { DaemonSet } from 'kubernetes-models/apps/v1';
import { ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service } from 'kubernetes-models/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { configFrom } from '../support/config.js';
import { getJson, startApp } from '../support/app-harness.js';
import { parse } from 'yaml';

const DIR = join(process.cwd(), 'docker', 'kubernetes');
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- manifests are arbitrary YAML, checked by the schemas
type Doc = Record<string, any>;

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/DaemonSet': DaemonSet,
  'v1/ConfigMap': ConfigMap,
  'v1/Namespace': Namespace,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

function manifests(): { file: string; doc: Doc }[] {
  return readdirSync(DIR)
    .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
    .flatMap((file) =>
      parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).map((d) => ({ file, doc: d.toJS() as Doc })),
    );
}

const matches = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('Kubernetes manifests (docker/kubernetes)', () => {
  const all = manifests();
  const find = (kind: string, name?: string): Doc[] =>
    all.map((m) => m.doc).filter((d) => d.kind === kind && (name === undefined || d.metadata.name === name));
  const daemonSet = find('DaemonSet')[0]!;
  const pod = daemonSet.spec.template.spec;
  const container = pod.containers[0];

  it('validates every manifest against the Kubernetes schemas', () => {
    expect(all.length).toBeGreaterThanOrEqual(8);
    for (const { file, doc } of all) {
      const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
      if (!Model) throw new Error(`${file}: no schema for ${doc.apiVersion} ${doc.kind}`);
      expect(() => new Model(doc as never).validate()).not.toThrow();
    }
  });

  it('a broken manifest is refused by the same validation (the check can fail)', () => {
    const broken = structuredClone(daemonSet);
    broken.spec.template.spec.containers[0].ports[0].containerPort = 'eighty';
    expect(() => new DaemonSet(broken as never).validate()).toThrow();
  });

  it('the kustomization lists exactly the manifest files', () => {
    const kustomization = parse(readFileSync(join(DIR, 'kustomization.yaml'), 'utf8')) as Doc;
    expect([...kustomization.resources].sort()).toEqual([...new Set(all.map((m) => m.file))].sort());
  });

  it('selectors match the pod labels (DaemonSet, both Services, the PDB); one Service is headless', () => {
    const labels = daemonSet.spec.template.metadata.labels;
    expect(matches(daemonSet.spec.selector.matchLabels, labels)).toBe(true);
    const services = find('Service');
    expect(services).toHaveLength(2);
    for (const s of services) expect(matches(s.spec.selector, labels)).toBe(true);
    expect(services.filter((s) => s.spec.clusterIP === 'None').map((s): string => String(s.metadata.name))).toEqual([
      'modelplane-peers',
    ]);
    expect(services.find((s) => s.spec.clusterIP !== 'None')!.spec.type).toBe('ClusterIP');
    expect(matches(find('PodDisruptionBudget')[0]!.spec.selector.matchLabels, labels)).toBe(true);
    const port = container.ports[0];
    for (const s of services) expect(s.spec.ports[0].targetPort).toBe(port.name);
  });

  it('every ConfigMap, Secret (and key) and claim the pod references exists', () => {
    for (const v of pod.volumes) {
      if (v.configMap) expect(find('ConfigMap', v.configMap.name)).toHaveLength(1);
      if (v.persistentVolumeClaim)
        expect(find('PersistentVolumeClaim', v.persistentVolumeClaim.claimName)).toHaveLength(1);
    }
    for (const e of container.env) {
      const ref = e.valueFrom?.secretKeyRef;
      if (!ref) continue;
      const secret = find('Secret', ref.name)[0];
      expect(secret).toBeDefined();
      expect(Object.keys({ ...secret!.stringData, ...secret!.data })).toContain(ref.key);
    }
    const mounted = container.volumeMounts.map((m: Doc): string => String(m.name)).sort();
    expect(pod.volumes.map((v: Doc): string => String(v.name)).sort()).toEqual(mounted);
  });

  it("the ConfigMap's config loads, and the grace period outlasts the drain", () => {
    const cm = find('ConfigMap', 'modelplane')[0]!;
    const config = configFrom(parse(cm.data['modelplane.yaml']) as Record<string, unknown>);
    expect(config.fleet?.dns?.name).toBe(`modelplane-peers.${find('Namespace')[0]!.metadata.name}.svc.cluster.local`);
    expect(config.fleet?.dns?.port).toBe(container.ports[0].containerPort);
    // modelplane exits by drain + 2 s (operations.md): the kubelet must not kill it first.
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(config.server.shutdownDrainS + 2);
    const env = container.env.map((e: Doc): string => String(e.name));
    expect(env).toEqual(
      expect.arrayContaining(['MODELPLANE_POD_IP', 'MODELPLANE_NODE_NAME', 'MODELPLANE_ADMIN_TOKEN']),
    );
  });

  it("the node's own url is the pod IP and port, as the kubelet expands it (peers can reach it)", () => {
    // Kubernetes expands $(NAME) only from variables defined earlier in the list; later or unknown ones stay
    // literal. Play that with a pod IP, then load the config with the resulting environment.
    const podIp = '10.42.0.7';
    const env: Record<string, string> = {};
    for (const e of container.env as Doc[]) {
      if (e.valueFrom?.fieldRef?.fieldPath === 'status.podIP') env[e.name as string] = podIp;
      else if (typeof e.value === 'string')
        env[e.name as string] = e.value.replace(
          /\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g,
          (all: string, name: string) => env[name] ?? all,
        );
    }
    const port = container.ports[0].containerPort as number;
    expect(env.MODELPLANE_SELF_URL).toBe(`http://${podIp}:${port}`);
    const cm = find('ConfigMap', 'modelplane')[0]!;
    const config = configFrom(parse(cm.data['modelplane.yaml']) as Record<string, unknown>, env);
    expect(config.fleet).toMatchObject({ selfUrl: `http://${podIp}:${port}`, podIp });
  });

  it('meets the restricted Pod Security Standard, with requests, limits and an accelerator-aware placement', () => {
    expect(find('Namespace')[0]!.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
    const allowed = [
      'configMap',
      'csi',
      'downwardAPI',
      'emptyDir',
      'ephemeral',
      'persistentVolumeClaim',
      'projected',
      'secret',
    ];
    for (const v of pod.volumes)
      expect(
        Object.keys(v)
          .filter((k) => k !== 'name')
          .every((k) => allowed.includes(k)),
      ).toBe(true);
    expect(pod.hostNetwork ?? false).toBe(false);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(container.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(container.securityContext.privileged ?? false).toBe(false);
    expect(container.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(container.resources.limits).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(Object.keys(pod.nodeSelector)).toHaveLength(1);
    expect(pod.tolerations.length).toBeGreaterThan(0);
  });

  it('probes point at paths the app answers: liveness /health/live, readiness /health/ready', async () => {
    expect(container.livenessProbe.httpGet.path).toBe('/health/live');
    expect(container.startupProbe.httpGet.path).toBe('/health/live');
    expect(container.readinessProbe.httpGet.path).toBe('/health/ready');
    const app = await startApp({ backends: [] });
    try {
      for (const probe of [container.livenessProbe, container.readinessProbe, container.startupProbe]) {
        expect((await getJson(`${app.url}${probe.httpGet.path}`)).status).toBe(200);
      }
    } finally {
      await app.close();
    }
  });
});
