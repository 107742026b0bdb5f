/**
 * Tenant strings as data in the synthesized Terraform JSON.
 *
 * Two interpreters read every string of a stack before anything is deployed:
 * - cdktf, at synth, replaces its token markers (`${TfToken[…]}`, `#{TfToken[…]}`) and numbers that
 *   encode a token (`-8.109562212591379e+298`, in any spelling) with the token's Terraform reference;
 * - Terraform reads every string of JSON syntax as a template: `${…}` interpolates, `%{…}` is a
 *   directive.
 * So a tenant's string has to be written so that neither finds anything in it, and Terraform's
 * template evaluation gives back exactly the tenant's text. (cdktf's `Fn.rawString` is for HCL
 * expressions: it also rewrites newlines and quotes, and leaves `%{` and cdktf's own markers alone.)
 */

/** A template directive that produces nothing: splits text where cdktf must not see a marker. */
const NOTHING = '%{if false}%{endif}';
/** Where Terraform starts an interpolation or a directive. */
const TEMPLATE_START = /([$%])\{/g;
/** The common tail of cdktf's string, list and map token markers (`${TfToken[`, `#{TfToken[`, `&{TfToken[`). */
const CDKTF_MARKER = /\{TfToken\[/g;
/** cdktf's own pattern for numbers in strings that may encode a token (NUMBER_TOKEN_REGEX of cdktf/lib/tokens/private/encoding.js). */
const CDKTF_NUMBER = /[-|\d|.+]+(e[-|\d|.|e|E|+]+)/g;
/** Top 16 bits of a double that encodes a cdktf token: a number token and a number-list token. */
const CDKTF_TOKEN_DOUBLE_TAGS: readonly number[] = [0xfdff, 0xfbff];

const bits = new DataView(new ArrayBuffer(8));

/** Whether cdktf reads `n` as one of its encoded tokens (its extractTokenDouble). */
function isCdktfTokenDouble(n: number): boolean {
  bits.setFloat64(0, n);
  return CDKTF_TOKEN_DOUBLE_TAGS.includes(bits.getUint16(0));
}

/**
 * The part of `text` that cdktf would read as an encoded number token, if any: such text cannot be
 * an identifier (a slug, a domain), because identifiers are built into names everywhere unescaped.
 */
export function cdktfNumberTokenIn(text: string): string | undefined {
  for (const [run] of text.matchAll(CDKTF_NUMBER)) if (isCdktfTokenDouble(parseFloat(run))) return run;
  return undefined;
}

/**
 * `text` written for a string of the synthesized Terraform JSON, so that cdktf leaves it alone and
 * Terraform's template evaluation gives back exactly `text`: every `${` and `%{` escaped (`$${`,
 * `%%{`, also after another `$` or `%`), and cdktf's markers and token numbers split by a directive
 * that produces nothing.
 *
 * Apply it once, to the text of a string attribute that Terraform evaluates (a resource or
 * provider argument, an output value, a local), e.g. to a JSON document after `JSON.stringify`;
 * not to backend settings or variable defaults, which Terraform does not evaluate. Text after it
 * must not start with `{` (a final `$` or `%` of the tenant's would open a template sequence).
 */
export function terraformLiteral(text: string): string {
  let out = text.replace(TEMPLATE_START, '$1$1{');
  if (out.includes('{TfToken[')) out = out.replace(CDKTF_MARKER, `{${NOTHING}TfToken[`);
  // Before every "e" of a token number: no part of it can then be read as a number with an exponent.
  out = out.replace(CDKTF_NUMBER, (run) => (isCdktfTokenDouble(parseFloat(run)) ? run.replace(/e/g, `${NOTHING}e`) : run));
  return out;
}
