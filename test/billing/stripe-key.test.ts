import { AwsSecretsManagerValueResolver, keyFromSecretValue, resolveStripeKey, StaticSecretValueResolver, stripeKeySource, StripeKeyError, type StripeKeyOptions } from '../../lib/billing';

/** Where the Stripe key comes from, and what is refused. */
describe('stripe key', () => {
  it.each<[string, StripeKeyOptions, ReturnType<typeof stripeKeySource>]>([
    ['nothing configured', { env: {} }, { kind: 'none' }],
    ['an empty variable', { env: { STRIPE_SECRET_KEY: '  ' } }, { kind: 'none' }],
    ['a test key', { env: { STRIPE_SECRET_KEY: 'sk_test_51Habcdefgh' } }, { kind: 'env', variable: 'STRIPE_SECRET_KEY', mode: 'test' }],
    ['a live restricted key', { env: { STRIPE_SECRET_KEY: 'rk_live_51Habcdefgh' } }, { kind: 'env', variable: 'STRIPE_SECRET_KEY', mode: 'live' }],
    ['a reference in the environment', { env: { STRIPE_SECRET_KEY_REF: 'tenancy/stripe' } }, { kind: 'secret', ref: 'tenancy/stripe' }],
    ['a reference option', { env: {}, secretRef: 'arn:aws:secretsmanager:us-east-1:1:secret:s' }, { kind: 'secret', ref: 'arn:aws:secretsmanager:us-east-1:1:secret:s' }],
  ])('source of %s', (_name, options, expected) => {
    expect(stripeKeySource(options)).toEqual(expected);
  });

  it.each([
    ['a publishable key', 'pk_test_51Habcdefgh'],
    ['a webhook secret', 'whsec_abcdefgh12345678'],
    ['a key with spaces', 'sk_test_abc defghijk'],
  ])('refuses %s without echoing it', (_name, key) => {
    expect(() => stripeKeySource({ env: { STRIPE_SECRET_KEY: key } })).toThrow(StripeKeyError);
    expect(() => stripeKeySource({ env: { STRIPE_SECRET_KEY: key } })).not.toThrow(key);
  });

  it.each([
    ['the key itself', 'sk_test_51Habcdefgh\n', 'sk_test_51Habcdefgh'],
    ['JSON with secret_key', '{"secret_key":"sk_test_51Habcdefgh"}', 'sk_test_51Habcdefgh'],
    ['JSON with api_key', '{"api_key":"sk_live_51Habcdefgh"}', 'sk_live_51Habcdefgh'],
  ])('reads a secret holding %s', (_name, value, key) => {
    expect(keyFromSecretValue(value, 'ref')).toBe(key);
  });

  it('refuses JSON secrets without a key', () => {
    expect(() => keyFromSecretValue('{"password":"x"}', 'ref')).toThrow(/without a "secret_key"/);
  });

  it('resolves references through the resolver', async () => {
    const resolver = new StaticSecretValueResolver({ 'tenancy/stripe': 'sk_live_51Habcdefgh' });
    await expect(resolveStripeKey({ env: {}, secretRef: 'tenancy/stripe', resolver })).resolves.toEqual({ key: 'sk_live_51Habcdefgh', mode: 'live', source: { kind: 'secret', ref: 'tenancy/stripe' } });
    await expect(resolveStripeKey({ env: {} })).resolves.toBeUndefined();
  });

  it('reads Secrets Manager with GetSecretValue', async () => {
    const sent: unknown[] = [];
    const client = { send: async (command: unknown) => (sent.push(command), { SecretString: '{"secret_key":"sk_test_51Habcdefgh"}' }) };
    const resolved = await resolveStripeKey({ env: { STRIPE_SECRET_KEY_REF: 'arn:aws:secretsmanager:us-east-1:1:secret:stripe' }, resolver: new AwsSecretsManagerValueResolver({ client }) });
    expect(resolved?.key).toBe('sk_test_51Habcdefgh');
    expect((sent[0] as { input: unknown }).input).toEqual({ SecretId: 'arn:aws:secretsmanager:us-east-1:1:secret:stripe' });
  });
});
