import { Lazy, Tokenization } from 'cdktf';
import { TOKEN_TRACES_ENV, withoutCreationStackTraces } from '../../lib/app/creation-stack-traces';
import { synthesize } from '../../lib/app/synthesize';
import { FixtureProject } from '../support/fixture-project';

const traceOfNewToken = () => Lazy.anyValue({ produce: () => 1 }).creationStack;

describe('cdktf creation stack traces during synthesis', () => {
  afterEach(() => {
    delete process.env[TOKEN_TRACES_ENV];
  });

  test('off while switched off, back on afterwards', () => {
    expect(traceOfNewToken().length).toBeGreaterThan(0);
    const restore = withoutCreationStackTraces();
    expect(traceOfNewToken()).toEqual([]);
    restore();
    expect(traceOfNewToken().length).toBeGreaterThan(0);
  });

  test(`${TOKEN_TRACES_ENV}=1 keeps them`, () => {
    process.env[TOKEN_TRACES_ENV] = '1';
    const restore = withoutCreationStackTraces();
    expect(traceOfNewToken().length).toBeGreaterThan(0);
    restore();
  });

  test('synthesize switches them off for its stacks and restores them, also when it fails', () => {
    const project = FixtureProject.fromSample();
    try {
      const result = synthesize({ root: project.root, outdir: 'out' });
      // The lazy values of a platform release were created during synthesis: no trace.
      const values = result.stacks.tenants[0].namespace!.release.valuesInput![0];
      expect(Tokenization.reverseString(values).firstToken!.creationStack).toEqual([]);
      expect(traceOfNewToken().length).toBeGreaterThan(0);
      project.writeTenantFile('acme.yaml', 'id: nope\n');
      expect(() => synthesize({ root: project.root, outdir: 'out' })).toThrow();
      expect(traceOfNewToken().length).toBeGreaterThan(0);
    } finally {
      project.remove();
    }
  });
});
