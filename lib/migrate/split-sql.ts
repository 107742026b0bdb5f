/**
 * Splits a SQL script into statements at top-level semicolons, for files that run outside a
 * transaction: PostgreSQL runs a multi-statement query string as one implicit transaction, so
 * `CREATE INDEX CONCURRENTLY` and the like must be sent one statement at a time.
 *
 * Understands what can hide a semicolon: `--` and nested `/* *\/` comments, '…' strings (with
 * '' and, for E'…', backslash escapes), "…" identifiers and $tag$…$tag$ bodies. Statements
 * that are only whitespace and comments are dropped.
 */
export function splitSqlStatements(sql: string): string[] {
  const statements: string[] = [];
  let start = 0;
  let i = 0;
  let hasCode = false;
  const n = sql.length;
  const push = (end: number) => {
    if (hasCode) statements.push(sql.slice(start, end).trim());
    start = end + 1;
    hasCode = false;
  };
  while (i < n) {
    const c = sql[i];
    const next = sql[i + 1];
    if (c === '-' && next === '-') {
      const eol = sql.indexOf('\n', i);
      i = eol < 0 ? n : eol + 1;
      continue;
    }
    if (c === '/' && next === '*') {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql[i] === '/' && sql[i + 1] === '*') (depth++, (i += 2));
        else if (sql[i] === '*' && sql[i + 1] === '/') (depth--, (i += 2));
        else i++;
      }
      if (depth > 0) throw new Error('unterminated /* comment');
      continue;
    }
    if (c === ';') {
      push(i);
      i++;
      continue;
    }
    if (!/\s/.test(c)) hasCode = true;
    if (c === "'") {
      const escapes = i > 0 && /[eE]/.test(sql[i - 1]) && (i < 2 || !/[A-Za-z0-9_]/.test(sql[i - 2]));
      i++;
      for (;;) {
        if (i >= n) throw new Error('unterminated string literal');
        if (escapes && sql[i] === '\\') i += 2;
        else if (sql[i] === "'" && sql[i + 1] === "'") i += 2;
        else if (sql[i] === "'") break;
        else i++;
      }
      i++;
      continue;
    }
    if (c === '"') {
      const end = sql.indexOf('"', i + 1);
      if (end < 0) throw new Error('unterminated quoted identifier');
      i = end + 1;
      while (sql[i] === '"') {
        const again = sql.indexOf('"', i + 1);
        if (again < 0) throw new Error('unterminated quoted identifier');
        i = again + 1;
      }
      continue;
    }
    if (c === '$' && (i === 0 || !/[A-Za-z0-9_]/.test(sql[i - 1]))) {
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 65));
      if (m) {
        const end = sql.indexOf(m[0], i + m[0].length);
        if (end < 0) throw new Error(`unterminated dollar-quoted string ${m[0]}`);
        i = end + m[0].length;
        continue;
      }
    }
    i++;
  }
  push(n);
  return statements;
}
