/// <reference lib="dom" />
// `tenancy compliance report` without live connections: the per-tenant Markdown and JSON, the fleet
// summary, failures and suppressions in both, and index.html rendered in headless Chromium, whose
// table (read from the DOM) matches fleet.json.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'puppeteer-core';
import { main } from '../../bin/tenancy';
import { runComplianceReport } from '../../lib/cli/compliance-command';
import type { FleetReport, StackReport } from '../../lib/compliance/report';
import { writeComplianceReport } from '../../lib/compliance/write-report';
import { ALL_RULES, rulesOf } from '../../lib/policy/packs';
import { PACK_NAMES } from '../../lib/policy/policy-rule';
import { launchChromium } from '../support/chromium';
import { FixtureProject } from '../support/fixture-project';

const REASON = 'partner VPN range agreed with the customer, ticket SEC-1234';
const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;

let project: FixtureProject;
let out: string;
beforeAll(() => {
  // The sample registry, with one failing tenant (a public /8 egress) and one suppressed finding.
  project = FixtureProject.fromSample();
  const globex = project.readTenant('globex');
  project.writeTenant({ ...globex, workload: { ...(globex.workload as object), egress: [{ cidr: '11.0.0.0/8', ports: [443] }] } });
  const initech = project.readTenant('initech');
  project.writeTenant({
    ...initech,
    workload: { ...(initech.workload as object), egress: [{ cidr: '100.64.0.0/10', ports: [443] }] },
    compliance: { soc2: true, suppressions: [{ rule: 'TENANCY-K8S-3', path: 'namespace/release', reason: REASON }] },
  });
  out = join(project.root, 'evidence');
});
afterAll(() => project.remove());

describe('the report of a fleet', () => {
  let code: number;
  let stdout = '';
  let stderr = '';
  beforeAll(async () => {
    code = await runComplianceReport(
      { root: project.root, out },
      { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) } },
    );
  });

  test('exits 1 because a tenant fails, and says where the report is', () => {
    expect(stderr).toBe('');
    expect(code).toBe(1);
    expect(stdout).toMatch(/^FAIL\s+tenant-globex\s/m);
    expect(stdout).toMatch(/^PASS\s+tenant-initech\s.*1 suppressed/m);
    expect(stdout).toMatch(/9 stacks, 1 failing; report in .*evidence\//);
  });

  test('writes a Markdown and a JSON report per stack, fleet.json and index.html, and no cdktf.out', () => {
    expect(readdirSync(out).sort()).toEqual(['fleet.json', 'index.html', 'platform', 'tenants']);
    expect(readdirSync(join(out, 'tenants')).sort()).toEqual(['acme', 'berlin-analytics', 'globex', 'initech', 'mediwell', 'payflow', 'tinyco'].flatMap((s) => [`${s}.json`, `${s}.md`]));
    expect(readdirSync(join(out, 'platform')).sort()).toEqual(['eu-central-1.json', 'eu-central-1.md', 'us-east-1.json', 'us-east-1.md']);
    expect(existsSync(join(project.root, 'cdktf.out'))).toBe(false);
  });

  test('each tenant: the packs its flags choose and every rule of them with its outcome and reference', () => {
    for (const [slug, packs] of [['mediwell', ['tenancy', 'soc2', 'hipaa']], ['payflow', ['tenancy', 'soc2', 'pci']], ['berlin-analytics', ['tenancy', 'soc2', 'gdpr']], ['acme', ['tenancy', 'soc2']]] as const) {
      const r = readJson<StackReport>(join(out, 'tenants', `${slug}.json`));
      expect(r).toMatchObject({ report: 'tenancy compliance report', formatVersion: 1, stack: `tenant-${slug}`, kind: 'tenant', packs, status: 'pass', evidence: { collected: false } });
      expect(r.rules.map((x) => x.id)).toEqual(rulesOf([...packs]).map((x) => x.id));
      for (const rule of r.rules) {
        expect(['pass', 'not-applicable']).toContain(rule.status);
        expect(rule.reference.href).toBe(`multi-tenant-saas-reference.md#${rule.reference.anchor}`);
      }
      const md = readFileSync(join(out, 'tenants', `${slug}.md`), 'utf8');
      for (const rule of r.rules) expect(md).toContain(`| \`${rule.id}\` |`);
      expect(md).toContain('**PASS**');
    }
  });

  test('a failing rule: status fail, the finding with its construct path, in JSON and Markdown', () => {
    const r = readJson<StackReport>(join(out, 'tenants', 'globex.json'));
    expect(r.status).toBe('fail');
    expect(r.rules.find((x) => x.id === 'TENANCY-K8S-3')).toMatchObject({
      status: 'fail',
      findings: [{ path: 'tenant-globex/namespace/release', message: expect.stringContaining('egress to 11.0.0.0/8 opens /8') }],
    });
    const md = readFileSync(join(out, 'tenants', 'globex.md'), 'utf8');
    expect(md).toContain('**FAIL**');
    expect(md).toMatch(/- \*\*error\*\* `TENANCY-K8S-3` at `tenant-globex\/namespace\/release`: egress to 11\.0\.0\.0\/8 opens \/8/);
  });

  test('a suppressed finding: with its reason and where it was declared, in JSON and Markdown', () => {
    const r = readJson<StackReport>(join(out, 'tenants', 'initech.json'));
    expect(r.status).toBe('pass');
    expect(r.suppressions).toEqual([{ rule: 'TENANCY-K8S-3', path: 'tenant-initech/namespace/release', reason: REASON, source: 'registry', finding: expect.stringContaining('100.64.0.0/10') }]);
    expect(r.rules.find((x) => x.id === 'TENANCY-K8S-3')!.status).toBe('suppressed');
    const md = readFileSync(join(out, 'tenants', 'initech.md'), 'utf8');
    expect(md).toContain(`| \`TENANCY-K8S-3\` | \`tenant-initech/namespace/release\` | ${REASON} | registry |`);
  });

  test('fleet.json: one row per stack with counts per pack, and the offboarded tenant named', () => {
    const fleet = readJson<FleetReport>(join(out, 'fleet.json'));
    expect(fleet.rows.map((r) => r.stack)).toEqual([
      'tenant-acme', 'tenant-berlin-analytics', 'tenant-globex', 'tenant-initech', 'tenant-mediwell', 'tenant-payflow', 'tenant-tinyco', 'platform-eu-central-1', 'platform-us-east-1',
    ]);
    expect(fleet.totals).toMatchObject({ stacks: 9, failing: 1, fail: 1, suppressed: 1 });
    expect(fleet.withoutStack).toEqual(['oldco']);
    expect(fleet.packs.map((p) => p.name)).toEqual([...PACK_NAMES]);
    expect(fleet.packs.flatMap((p) => p.rules)).toEqual(ALL_RULES.map((r) => r.id));
    const globex = fleet.rows.find((r) => r.slug === 'globex')!;
    expect(globex).toMatchObject({ status: 'fail', byPack: { tenancy: { fail: 1 } }, files: { markdown: 'tenants/globex.md', json: 'tenants/globex.json' } });
  });
});

describe('the fleet summary page in headless Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  test('is self-contained, and its table (read from the DOM) matches fleet.json', async () => {
    const fleet = readJson<FleetReport>(join(out, 'fleet.json'));
    const page = await browser.newPage();
    const requests: string[] = [];
    const problems: string[] = [];
    await page.setRequestInterception(true);
    page.on('request', (req) => {
      requests.push(req.url());
      if (req.url().startsWith('file://')) void req.continue();
      else void req.abort();
    });
    page.on('console', (m) => (m.type() === 'error' ? problems.push(m.text()) : undefined));
    page.on('pageerror', (e) => problems.push(String(e)));
    await page.goto(`file://${join(out, 'index.html')}`, { waitUntil: 'load' });

    // Nothing but the page itself was requested: no CDN, no font, no script.
    expect(requests).toEqual([`file://${join(out, 'index.html')}`]);
    expect(problems).toEqual([]);
    expect(await page.title()).toBe('Compliance fleet summary');

    const table = await page.$$eval('#fleet-summary tbody tr', (rows) =>
      rows.map((tr) => {
        const field = (name: string) => tr.querySelector(`td[data-field="${name}"]`)?.textContent?.trim() ?? null;
        const packs: Record<string, unknown> = {};
        tr.querySelectorAll('td[data-pack]').forEach((td: Element) => {
          const data = (name: string) => td.getAttribute(`data-${name}`);
          packs[data('pack')!] = data('applied') === 'true'
            ? { pass: Number(data('pass')), fail: Number(data('fail')), warning: Number(data('warning')), suppressed: Number(data('suppressed')), notApplicable: Number(data('not-applicable')), text: td.textContent!.trim() }
            : null;
        });
        return {
          stack: field('stack'), link: tr.querySelector('td[data-field="stack"] a')?.getAttribute('href'), company: field('company'), model: field('model'), plan: field('plan'),
          region: field('region'), packs: field('packs'), byPack: packs, fail: Number(field('fail')), suppressed: Number(field('suppressed')), evidence: field('evidence'), status: field('status'),
        };
      }));

    expect(table).toEqual(fleet.rows.map((r) => ({
      stack: r.stack,
      link: r.files.markdown,
      company: r.company ?? 'shared platform',
      model: r.model ?? '',
      plan: r.plan ?? '',
      region: r.region,
      packs: r.packs.join(', '),
      byPack: Object.fromEntries(PACK_NAMES.map((p) => [p, r.packs.includes(p) ? { ...r.byPack[p], text: expect.stringMatching(new RegExp(`^${r.byPack[p]!.pass} pass`)) } : null])),
      fail: r.totals.fail,
      suppressed: r.totals.suppressed,
      evidence: r.evidence,
      status: r.status,
    })));

    // The chart: one bar per applied pack of each stack, with the same counts; failing stacks stand out.
    const bars = await page.$$eval('#pack-chart g.bar', (gs) => gs.map((g) => Object.fromEntries(['stack', 'pack', 'pass', 'fail', 'warning', 'suppressed'].map((k) => [k, g.getAttribute(`data-${k}`)]))));
    expect(bars).toEqual(fleet.rows.flatMap((r) => r.packs.map((p) => ({
      stack: r.stack, pack: p, pass: String(r.byPack[p]!.pass), fail: String(r.byPack[p]!.fail), warning: String(r.byPack[p]!.warning), suppressed: String(r.byPack[p]!.suppressed),
    }))));
    expect(await page.$$eval('#pack-chart rect.fail', (rects) => rects.length)).toBe(1);
    const chartBox = await page.$eval('#pack-chart', (svg) => svg.getBoundingClientRect().toJSON() as { width: number; height: number });
    expect(chartBox.width).toBeGreaterThan(400);
    expect(chartBox.height).toBeGreaterThan(fleet.rows.length * 20);
    expect(await page.$eval('[data-total="failing"]', (b) => b.textContent)).toBe(String(fleet.totals.failing));
    await page.close();
  });
});

describe('the CLI', () => {
  test('`tenancy compliance report --tenant` writes only that tenant; an unknown tenant is bad usage (2)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'compliance-cli-'));
    const write = process.stdout.write;
    const errWrite = process.stderr.write;
    let stderr = '';
    process.stdout.write = (() => true) as typeof process.stdout.write;
    process.stderr.write = ((t: string) => ((stderr += t), true)) as typeof process.stderr.write;
    try {
      expect(await main(['compliance', 'report', '--root', project.root, '--out', join(dir, 'one'), '--tenant', 'mediwell'])).toBe(0);
      expect(readdirSync(join(dir, 'one', 'tenants'))).toEqual(['mediwell.json', 'mediwell.md']);
      expect(existsSync(join(dir, 'one', 'platform'))).toBe(false);
      process.exitCode = undefined;
      expect(await main(['compliance', 'report', '--root', project.root, '--out', join(dir, 'two'), '--tenant', 'nope'])).toBe(2);
      expect(stderr).toMatch(/no tenant with slug or id "nope"/);
      expect(existsSync(join(dir, 'two'))).toBe(false);
    } finally {
      process.stdout.write = write;
      process.stderr.write = errWrite;
      process.exitCode = undefined;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a rerun replaces the directory as a whole', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'compliance-rerun-'));
    try {
      await writeComplianceReport({ root: project.root, outDir: dir, tenants: ['acme', 'tinyco'] });
      await writeComplianceReport({ root: project.root, outDir: dir, tenants: ['acme'] });
      expect(readdirSync(join(dir, 'tenants'))).toEqual(['acme.json', 'acme.md']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
